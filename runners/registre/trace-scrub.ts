/**
 * Removes secrets from a Playwright trace before it leaves the task. A trace
 * is a zip (trace.trace, trace.network, resources/…) holding every action's
 * parameters and every request: a login's typed password and posted form,
 * the session cookie. Playwright has no option to leave them out, so each
 * entry is rewritten with every occurrence of each secret (as typed, as
 * form-encoded) replaced by "[scrubbed]". Reads the central directory (the
 * sizes Playwright writes after each entry's data are there), writes a plain
 * zip back; node:zlib does the deflating and the CRCs.
 */
import { crc32, deflateRawSync, inflateRawSync } from "node:zlib";

const SCRUBBED = "[scrubbed]";
const CENTRAL_SIGNATURE = 0x02014b50;
const END_SIGNATURE = 0x06054b50;

interface Entry {
  readonly name: Buffer;
  readonly data: Buffer;
}

/** The forms a secret takes in a trace: as typed, form-encoded, URI-encoded. */
export function secretForms(secrets: readonly string[]): Buffer[] {
  const forms = new Set<string>();
  for (const secret of secrets) {
    // A very short value would scrub unrelated text; credentials and cookies are longer.
    if (secret.length < 4) continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    forms.add(new URLSearchParams({ v: secret }).toString().slice(2));
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  return [...forms].sort((a, b) => b.length - a.length).map((form) => Buffer.from(form));
}

/** `data` with every form replaced by `placeholder` (which must be plain letters where it is replayed: "SCRUBBED"). */
export function scrubBuffer(data: Buffer, forms: readonly Buffer[], placeholder = SCRUBBED): Buffer {
  const replacement = Buffer.from(placeholder);
  let current = data;
  for (const form of forms) {
    if (current.indexOf(form) < 0) continue;
    const parts: Buffer[] = [];
    let from = 0;
    for (let at = current.indexOf(form); at >= 0; at = current.indexOf(form, from)) {
      parts.push(current.subarray(from, at), replacement);
      from = at + form.length;
    }
    parts.push(current.subarray(from));
    current = Buffer.concat(parts);
  }
  return current;
}

/** The trace zip `zip` with every form of every secret replaced. */
export function scrubTraceZip(zip: Buffer, secrets: readonly string[], placeholder = SCRUBBED): Buffer {
  const forms = secretForms(secrets);
  return writeZip(readZip(zip).map((entry) => ({ name: entry.name, data: scrubBuffer(entry.data, forms, placeholder) })));
}

function readZip(zip: Buffer): Entry[] {
  let end = zip.length - 22;
  while (end >= 0 && zip.readUInt32LE(end) !== END_SIGNATURE) end -= 1;
  if (end < 0) throw new Error("not a zip: no end of central directory");
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries: Entry[] = [];
  for (let index = 0; index < count; index += 1) {
    if (zip.readUInt32LE(at) !== CENTRAL_SIGNATURE) throw new Error("not a zip: bad central directory");
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localOffset = zip.readUInt32LE(at + 42);
    const name = Buffer.from(zip.subarray(at + 46, at + 46 + nameLength));
    const localNameLength = zip.readUInt16LE(localOffset + 26);
    const localExtraLength = zip.readUInt16LE(localOffset + 28);
    const start = localOffset + 30 + localNameLength + localExtraLength;
    const raw = zip.subarray(start, start + compressedSize);
    if (method !== 0 && method !== 8) throw new Error(`zip entry ${name.toString()} uses compression method ${method}`);
    entries.push({ name, data: method === 8 ? inflateRawSync(raw) : Buffer.from(raw) });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

function writeZip(entries: readonly Entry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const compressed = deflateRawSync(entry.data);
    const crc = crc32(entry.data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // names are UTF-8
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(entry.data.length, 22);
    local.writeUInt16LE(entry.name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(CENTRAL_SIGNATURE, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(entry.data.length, 24);
    central.writeUInt16LE(entry.name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, entry.name, compressed);
    centrals.push(central, entry.name);
    offset += local.length + entry.name.length + compressed.length;
  }
  const centralSize = centrals.reduce((sum, part) => sum + part.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END_SIGNATURE, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}
