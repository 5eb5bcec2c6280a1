// Overview: the three north-star cards, the four DORA keys with their performance levels,
// milestones with their forecast and the suggested actions with their evidence.

import { get } from "../api";
import type { Context } from "../context";
import { clear, h, notice } from "../dom";
import { formatChange, formatHours, formatInstant, formatMinutes, formatNumber, formatPercent, formatRatio, humanize, trendArrow } from "../format";

interface Summary {
  timestamp: string;
  metrics: {
    north_star: Record<string, Record<string, unknown>>;
    dora?: Record<string, Record<string, unknown>>;
  };
}

type Card = { key: string; title: string; components: [string, string, (v: number | null) => string][] };

const CARDS: Card[] = [
  {
    key: "delivery_predictability_index",
    title: "Delivery predictability",
    components: [
      ["schedule_reliability", "Schedule reliability", formatRatio],
      ["cycle_time_stability", "Cycle-time stability", formatRatio],
      ["blocker_resolution_rate", "Blocker resolution", formatRatio],
    ],
  },
  {
    key: "flow_efficiency_score",
    title: "Flow efficiency",
    components: [
      ["active_time_pct", "Active", formatPercent],
      ["waiting_time_pct", "Waiting", formatPercent],
      ["blocked_time_pct", "Blocked", formatPercent],
    ],
  },
  {
    key: "integration_reliability_score",
    title: "Integration reliability",
    components: [
      ["success_rate", "Success rate", formatRatio],
      ["avg_recovery_minutes", "Avg recovery", formatMinutes],
    ],
  },
];

function num(value: unknown): number | null {
  return typeof value === "number" ? value : null;
}

function card(spec: Card, data: Record<string, unknown>): HTMLElement {
  const value = num(data.value);
  const trend = typeof data.trend === "string" ? data.trend : null;
  const change = num(data.change_pct);
  // DPI nests its components; the other two scores carry them beside the value.
  const parts = (typeof data.components === "object" && data.components !== null ? data.components : data) as Record<string, unknown>;
  return h(
    "section",
    { class: "card", "data-testid": `card-${spec.key}` },
    h("h3", {}, spec.title),
    h("div", { class: "card-value", "data-testid": "card-value", "data-value": value ?? "null" }, formatNumber(value, 2)),
    h(
      "div",
      { class: `card-trend trend-${trend ?? "none"}`, "data-testid": "card-trend", "data-trend": trend ?? "null", "data-change": change ?? "null" },
      "trend" in data ? `${trendArrow(trend)} ${formatChange(change)} vs. 7 days earlier` : "no trend for this score",
    ),
    h(
      "dl",
      { class: "components" },
      spec.components.flatMap(([name, label, format]) => [
        h("dt", {}, label),
        h("dd", { "data-testid": `component-${name}`, "data-value": num(parts[name]) ?? "null" }, format(num(parts[name]))),
      ]),
    ),
    typeof data.reason === "string" ? h("p", { class: "reason" }, `Not computed: ${humanize(data.reason)}.`) : null,
  );
}

type DoraCard = { key: string; title: string; value: string; format: (v: number | null) => string; components: [string, string, (v: number | null) => string][] };

const count = (v: number | null) => formatNumber(v, 0);

const DORA_CARDS: DoraCard[] = [
  {
    key: "deployment_frequency",
    title: "Deployment frequency",
    value: "per_day",
    format: (v) => (v === null ? "—" : `${formatNumber(v, 2)} / day`),
    components: [["count_30d", "Deployments", count]],
  },
  {
    key: "lead_time_for_changes",
    title: "Lead time for changes",
    value: "p50_minutes",
    format: formatMinutes,
    components: [
      ["p90_minutes", "p90", formatMinutes],
      ["sample_size", "Changes", count],
    ],
  },
  {
    key: "change_failure_rate",
    title: "Change failure rate",
    value: "rate",
    format: formatRatio,
    components: [
      ["failures", "Failures", count],
      ["deployments", "Deployments", count],
    ],
  },
  {
    key: "time_to_restore",
    title: "Time to restore",
    value: "p50_minutes",
    format: formatMinutes,
    components: [["sample_size", "Incidents", count]],
  },
];

function doraCard(spec: DoraCard, data: Record<string, unknown>): HTMLElement {
  const value = num(data[spec.value]);
  const level = typeof data.performance_level === "string" ? data.performance_level : null;
  return h(
    "section",
    { class: "card", "data-testid": `dora-${spec.key}` },
    h("h3", {}, spec.title),
    h("div", { class: "card-value", "data-testid": "card-value", "data-value": value ?? "null" }, spec.format(value)),
    h("div", { class: "card-trend" }, h("span", { class: `pill level-${level ?? "none"}`, "data-testid": "performance-level", "data-level": level ?? "null" }, level ? humanize(level) : "no data")),
    h(
      "dl",
      { class: "components" },
      spec.components.flatMap(([name, label, format]) => [
        h("dt", {}, label),
        h("dd", { "data-testid": `component-${name}`, "data-value": num(data[name]) ?? "null" }, format(num(data[name]))),
      ]),
    ),
  );
}

interface Milestone {
  milestone_id: string;
  name: string | null;
  due_at: string | null;
  health_score: number | null;
  health_status: string | null;
  breach_probability: number | null;
  forecast: { status: string; p50: string | null; p85: string | null; p95: string | null };
  task_summary: { total: number; completed: number; remaining: number; avg_cycle_time_hours: number | null };
}

function milestones(items: Milestone[]): HTMLElement {
  if (items.length === 0) return notice("empty", "No milestones yet", "Milestones appear once events name them (milestone_planned).");
  return h(
    "table",
    { class: "table", "data-testid": "milestones" },
    h("thead", {}, h("tr", {}, ["Milestone", "Due", "Health", "Forecast p50", "p85", "Breach probability", "Status", "Tasks done"].map((c) => h("th", {}, c)))),
    h(
      "tbody",
      {},
      items.map((m) =>
        h(
          "tr",
          { "data-milestone": m.milestone_id },
          h("td", {}, m.name ?? m.milestone_id),
          h("td", {}, formatInstant(m.due_at)),
          h("td", {}, h("span", { class: `pill health-${m.health_status ?? "unknown"}` }, `${m.health_status ?? "unknown"} ${formatNumber(m.health_score, 0)}`)),
          h("td", { "data-testid": "forecast-p50" }, m.forecast.p50 ?? "—"),
          h("td", {}, m.forecast.p85 ?? "—"),
          h("td", { "data-testid": "breach-probability" }, formatRatio(m.breach_probability)),
          h("td", {}, humanize(m.forecast.status)),
          h("td", {}, `${m.task_summary.completed} / ${m.task_summary.total} (avg cycle ${formatHours(m.task_summary.avg_cycle_time_hours)})`),
        ),
      ),
    ),
  );
}

interface Suggestion {
  action_type: string;
  confidence: number;
  affected_tasks: string[];
  rationale: string;
  evidence_refs: string[];
}

function actions(items: Suggestion[]): HTMLElement {
  if (items.length === 0) return notice("empty", "No suggested actions", "Nothing in the current numbers calls for an action.");
  return h(
    "ul",
    { class: "actions", "data-testid": "actions" },
    items.map((s) =>
      h(
        "li",
        { class: "action" },
        h("strong", {}, humanize(s.action_type)),
        ` — confidence ${formatRatio(s.confidence)}`,
        h("p", {}, s.rationale),
        s.affected_tasks.length ? h("p", { class: "muted" }, `Tasks: ${s.affected_tasks.join(", ")}`) : null,
        h("p", { class: "evidence" }, "Evidence: ", s.evidence_refs.map((r) => h("code", {}, r))),
      ),
    ),
  );
}

async function optional<T>(load: Promise<T>, what: string): Promise<T | HTMLElement> {
  try {
    return await load;
  } catch (error) {
    return notice("error", `${what} could not be loaded`, (error as Error).message);
  }
}

export async function renderOverview(ctx: Context, view: HTMLElement): Promise<void> {
  const p = encodeURIComponent(ctx.projectId);
  const started = performance.now();
  const summary = await get<Summary>(`/v1/metrics/summary?project_id=${p}`);
  const cards = h("div", { class: "cards", "data-testid": "cards" }, CARDS.map((c) => card(c, summary.metrics.north_star[c.key] ?? {})));
  const dora = summary.metrics.dora ?? {};
  const doraCards = h(
    "section",
    { class: "panel" },
    h("h2", {}, "Delivery performance (DORA, last 30 days)"),
    h("div", { class: "cards", "data-testid": "dora-cards" }, DORA_CARDS.map((c) => doraCard(c, dora[c.key] ?? {}))),
  );
  const health = h("section", { class: "panel" }, h("h2", {}, "Milestones and forecast"), notice("loading", "Loading milestones…"));
  const suggested = h("section", { class: "panel" }, h("h2", {}, "Suggested actions"), notice("loading", "Loading suggestions…"));
  clear(view, h("p", { class: "muted" }, `Snapshot of ${formatInstant(summary.timestamp)}`), cards, doraCards, health, suggested);
  // The time from asking for the summary to the cards in the page (docs/BENCHMARKS.md).
  cards.dataset.renderMs = (performance.now() - started).toFixed(1);
  const [m, a] = await Promise.all([
    optional(get<{ milestones: Milestone[] }>(`/v1/metrics/health?project_id=${p}`), "Milestones"),
    optional(get<{ suggestions: Suggestion[] }>(`/v1/metrics/actions?project_id=${p}`), "Suggested actions"),
  ]);
  health.replaceChildren(h("h2", {}, "Milestones and forecast"), m instanceof HTMLElement ? m : milestones(m.milestones));
  suggested.replaceChildren(h("h2", {}, "Suggested actions"), a instanceof HTMLElement ? a : actions(a.suggestions));
}
