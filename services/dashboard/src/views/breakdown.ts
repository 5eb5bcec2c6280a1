// Breakdown: a metric split by one of its dimensions, as bars and a table. Task metrics split
// by the task dimensions, with filters on the others; DORA keys by environment or service.

import { get } from "../api";
import { barChart } from "../charts";
import { type Context, remember, setting } from "../context";
import { clear, field, h, notice, select } from "../dom";
import { formatMetric, formatPercent, formatTrend, humanize } from "../format";
import { type BreakdownRow, breakdownBars, breakdownDimensions, filtersParam, query } from "../shape";

export async function renderBreakdown(ctx: Context, view: HTMLElement): Promise<void> {
  const c = ctx.catalog;
  const metric = setting("breakdown", "metric", c.breakdownMetrics.includes("cycle_time") ? "cycle_time" : c.breakdownMetrics[0]);
  const dimensions = breakdownDimensions(metric, c.dimensions, c.doraMetrics, c.doraDimensions);
  const dora = c.doraMetrics.includes(metric);
  // A dimension chosen for another kind of metric falls back to this kind's first.
  const chosen = setting("breakdown", dimensionKey(dora), dimensions.includes("assignee") ? "assignee" : dimensions[0]);
  const dimension = dimensions.includes(chosen) ? chosen : dimensions[0];
  const timeRange = setting("breakdown", "time_range", "30d");
  const filters: Record<string, string> = {};
  if (!dora) for (const d of dimensions) if (d !== dimension) filters[d] = setting("breakdown", `filter.${d}`, "");
  const change = (name: string) => (value: string) => {
    remember("breakdown", name, value);
    ctx.refresh();
  };
  const filterInputs = Object.keys(filters).map((d) => {
    const input = h("input", { id: `filter-${d}`, "data-testid": `filter-${d}`, type: "text", value: filters[d], placeholder: "any" }) as HTMLInputElement;
    input.addEventListener("change", () => change(`filter.${d}`)(input.value));
    return field(humanize(d), input);
  });
  const controls = h(
    "div",
    { class: "controls" },
    field("Metric", select("breakdown-metric", c.breakdownMetrics, metric, change("metric"), humanize)),
    field("By", select("breakdown-dimension", dimensions, dimension, change(dimensionKey(dora)), humanize)),
    field("Range", select("breakdown-range", c.timeRanges, timeRange, change("time_range"))),
  );
  const body = await get<{ breakdown: BreakdownRow[]; total: number | null }>(
    `/v1/metrics/breakdown?${query({ project_id: ctx.projectId, metric, dimension, time_range: timeRange, filters: filtersParam(filters) })}`,
  );
  const chart = h("section", { class: "panel", "data-testid": "breakdown-chart", "data-dimension": dimension, "data-api-rows": body.breakdown.length });
  const format = (v: number | null) => formatMetric(metric, v);
  const table = h(
    "table",
    { class: "table", "data-testid": "breakdown-table" },
    h("thead", {}, h("tr", {}, [humanize(dimension), humanize(metric), "Share", dora ? "Count" : "Tasks", "Trend"].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      body.breakdown.map((r) =>
        h(
          "tr",
          {},
          h("td", {}, r.dimension_label ?? r.dimension_value ?? "(none)"),
          h("td", { "data-value": r.value ?? "null" }, format(r.value)),
          h("td", {}, formatPercent(r.percentage)),
          h("td", {}, r.count),
          h("td", { class: `trend-${r.trend.direction ?? "none"}` }, formatTrend(r.trend.direction, r.trend.change_pct)),
        ),
      ),
    ),
  );
  const filterRow = dora ? null : h("div", { class: "controls filters" }, h("span", { class: "muted" }, "Filters:"), filterInputs);
  clear(view, controls, ...(filterRow ? [filterRow] : []), chart, h("section", { class: "panel" }, h("p", {}, `Total: ${format(body.total)}`), table));
  if (body.breakdown.length === 0) {
    const what = dora ? "No deployments or incidents fall in this range." : "No tasks match this metric, range and filters.";
    chart.append(notice("empty", "Nothing to break down", what));
    return;
  }
  const bars = breakdownBars(body.breakdown);
  barChart(chart, humanize(metric), bars.labels, bars.values, format);
}

/** Task metrics and DORA keys keep their chosen dimension apart. */
function dimensionKey(dora: boolean): string {
  return dora ? "dora_dimension" : "dimension";
}
