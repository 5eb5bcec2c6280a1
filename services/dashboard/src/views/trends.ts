// Trends: one chart per trend metric, with granularity and date range.

import { get } from "../api";
import { lineChart } from "../charts";
import { type Context, remember, setting } from "../context";
import { clear, field, h, notice, select } from "../dom";
import { formatMetric, humanize } from "../format";
import { defaultRange, query, type TrendPoint, trendSeries } from "../shape";

export async function renderTrends(ctx: Context, view: HTMLElement): Promise<void> {
  const range = defaultRange(ctx.snapshotTime, new Date());
  const granularity = setting("trends", "granularity", "day");
  const start = setting("trends", "start", range.start);
  const end = setting("trends", "end", range.end);
  const change = (name: string) => (value: string) => {
    remember("trends", name, value);
    ctx.refresh();
  };
  const date = (id: string, name: string, value: string) => {
    const input = h("input", { id, "data-testid": id, type: "date", value }) as HTMLInputElement;
    input.addEventListener("change", () => input.value && change(name)(input.value));
    return input;
  };
  const controls = h(
    "div",
    { class: "controls" },
    field("Granularity", select("granularity", ctx.catalog.granularities, granularity, change("granularity"))),
    field("From", date("trend-start", "start", start)),
    field("To", date("trend-end", "end", end)),
  );
  const grid = h("div", { class: "chart-grid" });
  clear(view, controls, grid);
  await Promise.all(
    ctx.catalog.trendMetrics.map(async (metric) => {
      const panel = h("section", { class: "panel chart-panel", "data-testid": `trend-${metric}`, "data-metric": metric }, h("h3", {}, humanize(metric)));
      grid.append(panel);
      try {
        const body = await get<{ data: TrendPoint[] }>(`/v1/metrics/trends?${query({ project_id: ctx.projectId, metric, granularity, start_date: start, end_date: end })}`);
        panel.dataset.apiPoints = String(body.data.length);
        if (body.data.length === 0) {
          panel.append(notice("empty", "No points in this range"));
          return;
        }
        if (body.data.every((p) => p.value === null)) {
          // Buckets without a value (a DORA key with nothing deployed, say) draw nothing.
          panel.append(notice("empty", "No values in this range", `${body.data.length} buckets, none with data`));
          return;
        }
        lineChart(panel, humanize(metric), trendSeries(body.data), (v) => formatMetric(metric, v));
      } catch (error) {
        panel.append(notice("error", "Could not load this trend", (error as Error).message));
      }
    }),
  );
}
