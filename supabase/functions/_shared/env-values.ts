/**
 * The environment as the configuration schemas read it: values trimmed, and a
 * blank value taken as unset, because deployment tools often export `NAME=`
 * for "not set". Every parse*Config starts here, so all agree.
 */
export function setValues(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    const trimmed = value?.trim();
    if (trimmed !== undefined && trimmed !== "") values[name] = trimmed;
  }
  return values;
}
