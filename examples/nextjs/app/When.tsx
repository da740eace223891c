/**
 * A time on a server-rendered page: a <time> element carrying the exact instant, with text a
 * person reads ("Dec 8, 2026, 2:05 PM UTC"; the server does not know the reader's time zone).
 */
const format = new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" });

export function When({ at }: { at: Date }) {
  return <time dateTime={at.toISOString()}>{format.format(at)} UTC</time>;
}
