// Data shaping between the API's bodies and what the views draw: routes, freshness,
// chart series, query strings and CSV. Pure functions, unit-tested with vitest.

export const VIEWS = ["overview", "trends", "breakdown", "drilldown", "alerts"] as const;
export type View = (typeof VIEWS)[number];

/** Where the page is: `#/projects/{id}/{view}` or `#/projects/{id}/alerts/{alert_id}`. */
export interface Route {
  projectId: string | null;
  view: View;
  alertId: string | null;
}

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter((p) => p.length > 0).map(decodeURIComponent);
  const route: Route = { projectId: null, view: "overview", alertId: null };
  if (parts[0] !== "projects" || !parts[1]) return route;
  route.projectId = parts[1];
  const view = parts[2] as View | undefined;
  if (view && (VIEWS as readonly string[]).includes(view)) route.view = view;
  if (route.view === "alerts" && parts[3]) route.alertId = parts[3];
  return route;
}

export function formatRoute(route: Route): string {
  if (!route.projectId) return "#/";
  let hash = `#/projects/${encodeURIComponent(route.projectId)}/${route.view}`;
  if (route.view === "alerts" && route.alertId) hash += `/${encodeURIComponent(route.alertId)}`;
  return hash;
}

export interface Freshness {
  as_of_seq: number;
  log_head_seq: number;
  lag_events: number;
  captured_at: string | null;
}

/** How far behind the worker may fall before the badge says "stale". */
export const STALE_AFTER_SECONDS = 120;

export type FreshnessState = "fresh" | "behind" | "stale" | "never" | "empty";

/**
 * The badge's state: `empty` without events, `never` when events wait for a first fold,
 * `fresh` when everything is folded, `behind` when events wait but the last fold is recent,
 * `stale` when events wait and the last fold is older than STALE_AFTER_SECONDS.
 */
export function freshnessState(f: Freshness, now: Date): FreshnessState {
  if (f.log_head_seq === 0) return "empty";
  if (!f.captured_at) return "never";
  if (f.lag_events === 0) return "fresh";
  const age = (now.getTime() - new Date(f.captured_at).getTime()) / 1000;
  return age > STALE_AFTER_SECONDS ? "stale" : "behind";
}

export interface TrendPoint {
  timestamp: string;
  value: number | null;
  dimensions: Record<string, string>;
  metadata: { sample_size: number; confidence_interval: { lower: number; upper: number } | null };
}

/** uPlot's columns: x in Unix seconds, y with null gaps; one x per point the API returned. */
export function trendSeries(points: TrendPoint[]): [number[], (number | null)[]] {
  const xs = points.map((p) => Math.floor(new Date(p.timestamp).getTime() / 1000));
  const ys = points.map((p) => (p.value === null || p.value === undefined ? null : p.value));
  return [xs, ys];
}

/** `YYYY-MM-DD` of an instant (UTC). */
export function isoDate(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** The default trend range: the `days` days ending on the snapshot's day. */
export function defaultRange(snapshotTime: string | null, now: Date, days = 30): { start: string; end: string } {
  const end = snapshotTime ? new Date(snapshotTime) : now;
  const start = new Date(end.getTime() - (days - 1) * 86400_000);
  return { start: isoDate(start), end: isoDate(end) };
}

/** A query string from the defined values, in the given order. */
export function query(params: Record<string, string | number | null | undefined>): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`);
  }
  return parts.join("&");
}

/** The `filters` JSON of breakdown and drill-down from the non-empty fields, or null. */
export function filtersParam(filters: Record<string, string>): string | null {
  const kept = Object.fromEntries(Object.entries(filters).filter(([, v]) => v.trim() !== "").map(([k, v]) => [k, v.trim()]));
  return Object.keys(kept).length === 0 ? null : JSON.stringify(kept);
}

export interface BreakdownRow {
  dimension_value: string | null;
  dimension_label?: string | null;
  value: number | null;
  percentage: number | null;
  count: number;
  trend: { direction: string | null; change_pct: number | null };
}

/** Bar chart columns: one bar per row, labelled by the value's label. */
export function breakdownBars(rows: BreakdownRow[]): { labels: string[]; values: (number | null)[] } {
  return {
    labels: rows.map((r) => r.dimension_label ?? r.dimension_value ?? "(none)"),
    values: rows.map((r) => r.value),
  };
}

/**
 * The dimensions a breakdown of `metric` may group by: the DORA dimensions for a DORA metric,
 * the task dimensions (every other one) for the rest.
 */
export function breakdownDimensions(metric: string, all: string[], doraMetrics: string[], doraDimensions: string[]): string[] {
  const dora = doraMetrics.includes(metric);
  return all.filter((d) => doraDimensions.includes(d) === dora);
}

/** One CSV field, quoted when it holds a separator, quote or line break. */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return "";
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export interface DrilldownItem {
  task_id: string;
  task_title: string | null;
  value: number | null;
  timestamp: string | null;
  context: Record<string, unknown>;
  contributing_factors: { factor: string; description: string; impact: number }[];
}

export const DRILLDOWN_CONTEXT = ["assignee", "milestone", "phase", "state", "task_class"] as const;

/** The drill-down rows as CSV (a header line, then one line per item; CRLF as RFC 4180). */
export function drilldownCsv(metric: string, items: DrilldownItem[]): string {
  const header = ["task_id", "task_title", metric, "timestamp", ...DRILLDOWN_CONTEXT, "contributing_factors"];
  const lines = [header.join(",")];
  for (const item of items) {
    lines.push(
      [
        item.task_id,
        item.task_title,
        item.value,
        item.timestamp,
        ...DRILLDOWN_CONTEXT.map((k) => item.context?.[k]),
        item.contributing_factors.map((f) => f.description).join("; "),
      ]
        .map(csvField)
        .join(","),
    );
  }
  return lines.join("\r\n") + "\r\n";
}

/** The page of an offset, counting from 1, and the number of pages. */
export function pageInfo(total: number, limit: number, offset: number): { page: number; pages: number } {
  return { page: Math.floor(offset / limit) + 1, pages: Math.max(1, Math.ceil(total / limit)) };
}

/** A closed list of the OpenAPI document (`components.schemas.<name>.enum`). */
export function closedList(document: unknown, name: string): string[] {
  const schemas = (document as { components?: { schemas?: Record<string, { enum?: unknown[] }> } })?.components?.schemas;
  const values = schemas?.[name]?.enum;
  return Array.isArray(values) ? values.map(String) : [];
}

/** Whether roles allow acknowledging alerts. */
export function canAcknowledge(roles: string[]): boolean {
  return roles.includes("planner") || roles.includes("admin");
}
