/**
 * Instants for tests of Gemini's daily quota, which resets at midnight
 * Pacific time. Computed here independently of the code under test
 * (`dailyWindow`): the calendar date by Intl's en-CA format (YYYY-MM-DD),
 * midnight by stepping whole UTC hours (Pacific offsets are whole hours).
 */
const HOUR_MS = 3_600_000;

const pacificDateFormat = new Intl.DateTimeFormat("en-CA", { timeZone: "America/Los_Angeles", year: "numeric", month: "2-digit", day: "2-digit" });

/** The calendar date in Los Angeles at an instant, "YYYY-MM-DD". */
export function pacificDate(at: number): string {
  return pacificDateFormat.format(at);
}

/** The first instant after `at` that is on the next Pacific calendar day: the daily reset. */
export function nextPacificMidnight(at: number): number {
  const today = pacificDate(at);
  for (let hour = Math.floor(at / HOUR_MS) + 1; ; hour += 1) {
    if (pacificDate(hour * HOUR_MS) !== today) return hour * HOUR_MS;
  }
}

/** Noon, Pacific, of the day the machine's clock is on: a "now" that never straddles midnight. */
export function noonPacificToday(): number {
  const reset = nextPacificMidnight(Date.now());
  return reset - 12 * HOUR_MS;
}

export interface PacificDayCase {
  readonly name: string;
  /** The injected "now". */
  readonly at: number;
  /** The Pacific day it is on. */
  readonly day: string;
  /** When that day's quota resets. */
  readonly reset: number;
  /** The day after. */
  readonly nextDay: string;
}

function dayCase(name: string, at: number, expected?: { day: string; reset: number; nextDay: string }): PacificDayCase {
  const reset = nextPacificMidnight(at);
  return { name, at, day: pacificDate(at), reset, nextDay: pacificDate(reset), ...expected };
}

/**
 * The dates every day-budget test runs at: the machine's today (so the suite
 * checks the day it runs on, not the day it was written), a date in 2027,
 * both daylight-saving switch days of 2027 in Los Angeles (23 and 25 hour
 * days), and the last second of a month. The fixed dates carry their answer
 * written out, so a wrong helper cannot agree with a wrong budget.
 */
export const PACIFIC_DAY_CASES: readonly PacificDayCase[] = [
  dayCase("today, by the machine's clock", Date.now()),
  // 2027-06-15 12:00 PDT (UTC−7).
  dayCase("a summer day of 2027", Date.UTC(2027, 5, 15, 19), { day: "2027-06-15", reset: Date.UTC(2027, 5, 16, 7), nextDay: "2027-06-16" }),
  // 2027-03-14: clocks go from 02:00 PST to 03:00 PDT; the day is 23 hours.
  dayCase("the day daylight saving time starts (2027-03-14)", Date.UTC(2027, 2, 14, 18), { day: "2027-03-14", reset: Date.UTC(2027, 2, 15, 7), nextDay: "2027-03-15" }),
  // 2027-11-07: clocks go from 02:00 PDT back to 01:00 PST; the day is 25 hours.
  dayCase("the day daylight saving time ends (2027-11-07)", Date.UTC(2027, 10, 7, 18), { day: "2027-11-07", reset: Date.UTC(2027, 10, 8, 8), nextDay: "2027-11-08" }),
  // 2027-01-31 23:59:59 PST = 2027-02-01 07:59:59 UTC: the reset is one second away.
  dayCase("23:59:59 Pacific on the last day of January 2027", Date.UTC(2027, 1, 1, 7, 59, 59), { day: "2027-01-31", reset: Date.UTC(2027, 1, 1, 8), nextDay: "2027-02-01" }),
];
