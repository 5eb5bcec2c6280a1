// Breakdown: a metric split by any dimension, as bars and a table, with filters on the
// other dimensions.

import { get } from "../api";
import { barChart } from "../charts";
import { type Context, remember, setting } from "../context";
import { clear, field, h, notice, select } from "../dom";
import { formatChange, formatMetric, formatPercent, humanize, trendArrow } from "../format";
import { type BreakdownRow, breakdownBars, filtersParam, query } from "../shape";

export async function renderBreakdown(ctx: Context, view: HTMLElement): Promise<void> {
  const c = ctx.catalog;
  const metric = setting("breakdown", "metric", c.breakdownMetrics.includes("cycle_time") ? "cycle_time" : c.breakdownMetrics[0]);
  const dimension = setting("breakdown", "dimension", c.dimensions.includes("assignee") ? "assignee" : c.dimensions[0]);
  const timeRange = setting("breakdown", "time_range", "30d");
  const filters: Record<string, string> = {};
  for (const d of c.dimensions) if (d !== dimension) filters[d] = setting("breakdown", `filter.${d}`, "");
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
    field("By", select("breakdown-dimension", c.dimensions, dimension, change("dimension"), humanize)),
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
    h("thead", {}, h("tr", {}, [humanize(dimension), humanize(metric), "Share", "Tasks", "Trend"].map((t) => h("th", {}, t)))),
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
          h("td", { class: `trend-${r.trend.direction ?? "none"}` }, `${trendArrow(r.trend.direction)} ${formatChange(r.trend.change_pct)}`),
        ),
      ),
    ),
  );
  clear(view, controls, h("div", { class: "controls filters" }, h("span", { class: "muted" }, "Filters:"), filterInputs), chart, h("section", { class: "panel" }, h("p", {}, `Total: ${format(body.total)}`), table));
  if (body.breakdown.length === 0) {
    chart.append(notice("empty", "Nothing to break down", "No tasks match this metric, range and filters."));
    return;
  }
  const bars = breakdownBars(body.breakdown);
  barChart(chart, humanize(metric), bars.labels, bars.values, format);
}
