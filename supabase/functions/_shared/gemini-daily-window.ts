/**
 * Gemini's requests-per-day quotas reset at midnight Pacific time (Google's
 * rate-limits page). The day is a calendar day in that zone, so it is 23 or 25
 * hours long when daylight saving time starts or ends: computed with the
 * runtime's time-zone data (Intl, in Deno and Node alike), never a fixed
 * UTC offset.
 */

/** Where Google's daily quotas reset. @default for every daily window */
export const GEMINI_DAY_TIME_ZONE = "America/Los_Angeles";

export interface DailyWindow {
  /** The calendar day in the zone, "YYYY-MM-DD": part of the day's Redis keys. */
  readonly day: string;
  /** Midnight that began the day (ms since epoch). */
  readonly startsAt: number;
  /** Midnight that ends it: the reset (ms since epoch). */
  readonly endsAt: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (!format) {
    // h23: some engines print midnight as "24" under hour12: false.
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, format);
  }
  return format;
}

/** The wall-clock fields of an instant in `timeZone`. */
function wallClock(ms: number, timeZone: string): { year: number; month: number; day: number; hour: number; minute: number; second: number } {
  const fields: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(ms)) {
    if (part.type !== "literal") fields[part.type] = Number(part.value);
  }
  return {
    year: fields.year ?? 0,
    month: fields.month ?? 1,
    day: fields.day ?? 1,
    hour: fields.hour ?? 0,
    minute: fields.minute ?? 0,
    second: fields.second ?? 0,
  };
}

/** The zone's offset from UTC at an instant, ms (−7 h or −8 h for Pacific time). */
function offsetAt(ms: number, timeZone: string): number {
  const wall = wallClock(ms, timeZone);
  const wallAsUtc = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
  return wallAsUtc - (ms - (((ms % 1000) + 1000) % 1000));
}

/** The instant of midnight starting a calendar day in the zone (twice corrected, for a DST change between the guesses). */
function midnight(year: number, month: number, day: number, timeZone: string): number {
  const wallAsUtc = Date.UTC(year, month - 1, day);
  const guess = wallAsUtc - offsetAt(wallAsUtc, timeZone);
  return wallAsUtc - offsetAt(guess, timeZone);
}

/** The daily window holding `nowMs`. */
export function dailyWindow(nowMs: number, timeZone: string = GEMINI_DAY_TIME_ZONE): DailyWindow {
  const wall = wallClock(nowMs, timeZone);
  const next = new Date(Date.UTC(wall.year, wall.month - 1, wall.day + 1));
  const pad = (value: number) => String(value).padStart(2, "0");
  return {
    day: `${wall.year}-${pad(wall.month)}-${pad(wall.day)}`,
    startsAt: midnight(wall.year, wall.month, wall.day, timeZone),
    endsAt: midnight(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), timeZone),
  };
}
