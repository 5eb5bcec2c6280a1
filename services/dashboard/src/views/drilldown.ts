// Drill-down: the tasks behind a metric, sortable by value, time or task, filtered,
// paged, and downloadable as CSV (every matching row, not only the page).

import { get } from "../api";
import { type Context, remember, setting } from "../context";
import { clear, field, h, notice, select } from "../dom";
import { formatInstant, formatMetric, formatNumber, humanize } from "../format";
import { DRILLDOWN_CONTEXT, type DrilldownItem, drilldownCsv, filtersParam, pageInfo, query } from "../shape";

export const PAGE_SIZE = 25;

interface Drilldown {
  items: DrilldownItem[];
  pagination: { total: number; limit: number; offset: number; has_more: boolean };
  aggregation: Record<string, number | null>;
}

function url(ctx: Context, metric: string, filters: string | null, sortBy: string, sortOrder: string, limit: number, offset: number): string {
  return `/v1/metrics/drilldown?${query({ project_id: ctx.projectId, metric, filters, sort_by: sortBy, sort_order: sortOrder, limit, offset })}`;
}

async function download(ctx: Context, metric: string, filters: string | null, sortBy: string, sortOrder: string): Promise<void> {
  const items: DrilldownItem[] = [];
  for (let offset = 0; ; offset += 500) {
    const page = await get<Drilldown>(url(ctx, metric, filters, sortBy, sortOrder, 500, offset));
    items.push(...page.items);
    if (!page.pagination.has_more) break;
  }
  const blob = new Blob([drilldownCsv(metric, items)], { type: "text/csv" });
  const link = h("a", { href: URL.createObjectURL(blob), download: `${metric}-drilldown.csv` }) as HTMLAnchorElement;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

export async function renderDrilldown(ctx: Context, view: HTMLElement): Promise<void> {
  const c = ctx.catalog;
  const metric = setting("drilldown", "metric", c.drilldownMetrics.includes("cycle_time") ? "cycle_time" : c.drilldownMetrics[0]);
  const sortBy = setting("drilldown", "sort_by", "value");
  const sortOrder = setting("drilldown", "sort_order", "desc");
  const offset = Number(setting("drilldown", "offset", "0"));
  const filterValues: Record<string, string> = {};
  for (const d of DRILLDOWN_CONTEXT) filterValues[d] = setting("drilldown", `filter.${d}`, "");
  const filters = filtersParam(filterValues);
  const set = (values: Record<string, string>) => {
    for (const [k, v] of Object.entries(values)) remember("drilldown", k, v);
    ctx.refresh();
  };
  const body = await get<Drilldown>(url(ctx, metric, filters, sortBy, sortOrder, PAGE_SIZE, offset));
  const { page, pages } = pageInfo(body.pagination.total, PAGE_SIZE, offset);
  const sortHeader = (field: string, label: string) => {
    const active = sortBy === field;
    const next = active && sortOrder === "desc" ? "asc" : "desc";
    return h(
      "th",
      { "aria-sort": active ? (sortOrder === "asc" ? "ascending" : "descending") : "none" },
      h("button", { class: "link", "data-testid": `sort-${field}`, type: "button", onclick: () => set({ sort_by: field, sort_order: next, offset: "0" }) }, `${label} ${active ? (sortOrder === "asc" ? "↑" : "↓") : ""}`),
    );
  };
  const filterInputs = DRILLDOWN_CONTEXT.map((d) => {
    const input = h("input", { id: `dd-filter-${d}`, "data-testid": `dd-filter-${d}`, type: "text", value: filterValues[d], placeholder: "any" }) as HTMLInputElement;
    input.addEventListener("change", () => set({ [`filter.${d}`]: input.value, offset: "0" }));
    return field(humanize(d), input);
  });
  const csv = h("button", { type: "button", "data-testid": "download-csv" }, "Download CSV") as HTMLButtonElement;
  csv.addEventListener("click", () => {
    csv.disabled = true;
    download(ctx, metric, filters, sortBy, sortOrder).finally(() => (csv.disabled = false));
  });
  const rows = body.items.map((item) =>
    h(
      "tr",
      { "data-task": item.task_id },
      h("td", {}, item.task_id),
      h("td", {}, item.task_title ?? "—"),
      h("td", { "data-value": item.value ?? "null" }, formatMetric(metric, item.value)),
      h("td", {}, formatInstant(item.timestamp)),
      DRILLDOWN_CONTEXT.map((k) => h("td", {}, String(item.context?.[k] ?? "—"))),
      // The two largest factors; all of them on hover and in the CSV.
      h("td", { class: "muted", title: item.contributing_factors.map((f) => f.description).join("\n") }, item.contributing_factors.slice(0, 2).map((f) => f.description).join("; ") + (item.contributing_factors.length > 2 ? " …" : "")),
    ),
  );
  const table = h(
    "table",
    { class: "table", "data-testid": "drilldown-table", "data-total": body.pagination.total, "data-offset": offset },
    h("thead", {}, h("tr", {}, sortHeader("task_id", "Task"), h("th", {}, "Title"), sortHeader("value", humanize(metric)), sortHeader("timestamp", "When"), DRILLDOWN_CONTEXT.map((k) => h("th", {}, humanize(k))), h("th", {}, "Contributing factors"))),
    h("tbody", {}, rows),
  );
  const aggregation = h("p", { class: "muted" }, ["avg", "p50", "p90", "p95", "max"].map((k) => `${k} ${formatMetric(metric, body.aggregation?.[k] ?? null)}`).join(" · "));
  const pager = h(
    "div",
    { class: "pager" },
    h("button", { type: "button", "data-testid": "page-prev", disabled: offset === 0, onclick: () => set({ offset: String(Math.max(0, offset - PAGE_SIZE)) }) }, "← Previous"),
    h("span", { "data-testid": "page-info" }, `Page ${page} of ${pages} (${formatNumber(body.pagination.total, 0)} tasks)`),
    h("button", { type: "button", "data-testid": "page-next", disabled: !body.pagination.has_more, onclick: () => set({ offset: String(offset + PAGE_SIZE) }) }, "Next →"),
  );
  clear(
    view,
    h("div", { class: "controls" }, field("Metric", select("drilldown-metric", c.drilldownMetrics, metric, (v) => set({ metric: v, offset: "0" }), humanize)), csv),
    h("div", { class: "controls filters" }, h("span", { class: "muted" }, "Filters:"), filterInputs),
    h("section", { class: "panel" }, aggregation, body.items.length ? table : notice("empty", "No tasks", "No task matches this metric and these filters."), pager),
  );
}
