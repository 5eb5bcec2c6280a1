// Formatting of the numbers, durations and times the API returns, for people.

/** A number with at most `digits` decimals (trailing zeros dropped); "—" for null. */
export function formatNumber(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const rounded = Number(value.toFixed(digits));
  return rounded.toLocaleString("en-US", { maximumFractionDigits: digits });
}

/** A ratio 0–1 as a percentage ("41.5 %"). */
export function formatRatio(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  return `${formatNumber(value * 100, 1)} %`;
}

/** A percentage that is already 0–100. */
export function formatPercent(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  return `${formatNumber(value, 1)} %`;
}

/** A signed change in percent ("+6.85 %", "−2 %"). */
export function formatChange(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  const sign = value > 0 ? "+" : value < 0 ? "−" : "±";
  return `${sign}${formatNumber(Math.abs(value), 2)} %`;
}

/** A trend as arrow and change; a rise from nothing (no percentage) reads "new". */
export function formatTrend(direction: string | null | undefined, change: number | null | undefined): string {
  if (direction === "up" && (change === null || change === undefined)) return `${trendArrow(direction)} new`;
  return `${trendArrow(direction)} ${formatChange(change)}`;
}

/** Minutes as the largest sensible unit ("45 min", "3.5 h", "2.1 d"). */
export function formatMinutes(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  if (Math.abs(value) < 60) return `${formatNumber(value, 0)} min`;
  if (Math.abs(value) < 48 * 60) return `${formatNumber(value / 60, 1)} h`;
  return `${formatNumber(value / 1440, 1)} d`;
}

/** Hours as hours or days. */
export function formatHours(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  return formatMinutes(value * 60);
}

/** The arrow of a trend direction. */
export function trendArrow(direction: string | null | undefined): string {
  switch (direction) {
    case "up":
      return "▲";
    case "down":
      return "▼";
    case "flat":
      return "▶";
    default:
      return "·";
  }
}

/** An RFC 3339 instant as "2026-03-14 12:00 UTC"; "—" for null. */
export function formatInstant(value: string | null | undefined): string {
  if (!value) return "—";
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) return value;
  return `${at.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** How long ago an instant was, from `now` ("just now", "5 min ago", "3 h ago", "2 d ago"). */
export function formatAge(value: string | null | undefined, now: Date): string {
  if (!value) return "never";
  const seconds = (now.getTime() - new Date(value).getTime()) / 1000;
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** A metric's value in its unit: durations in minutes, ratios, counts, scores. */
export function formatMetric(metric: string, value: number | null | undefined): string {
  switch (metric) {
    case "cycle_time":
    case "lead_time":
    case "lead_time_for_changes":
    case "time_to_restore":
      return formatMinutes(value);
    case "blocked_ratio":
    case "change_failure_rate":
      return formatRatio(value);
    default:
      return formatNumber(value);
  }
}

/** A snake_case identifier as words ("cycle_time" → "Cycle time"). */
export function humanize(identifier: string): string {
  const words = identifier.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** A count with its noun ("1 event", "3 events"). */
export function countOf(count: number, noun: string): string {
  return `${formatNumber(count, 0)} ${noun}${count === 1 ? "" : "s"}`;
}
