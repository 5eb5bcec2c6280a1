// The two chart kinds, on uPlot: a line over time and bars over categories. Each chart
// records on its element how many points it drew (`data-points`, set in uPlot's draw hook),
// so a test can compare it with what the API returned.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

import { h } from "./dom";

function width(container: HTMLElement): number {
  return Math.max(280, Math.floor(container.getBoundingClientRect().width || 480) - 8);
}

function recordDraw(element: HTMLElement): uPlot.Hooks.Arrays {
  return {
    draw: [
      (u: uPlot) => {
        element.dataset.points = String(u.data[0].length);
        element.dataset.drawn = String((u.data[1] as (number | null)[]).filter((v) => v !== null).length);
      },
    ],
  };
}

/** A line chart of one series over time. */
export function lineChart(container: HTMLElement, label: string, data: [number[], (number | null)[]], format: (v: number | null) => string): uPlot {
  const element = h("div", { class: "chart" });
  container.append(element);
  return new uPlot(
    {
      width: width(container),
      height: 180,
      legend: { show: true },
      cursor: { points: { size: 6 } },
      scales: { x: { time: true } },
      axes: [{ stroke: "#555" }, { stroke: "#555", size: 70, values: (_u, ticks) => ticks.map((t) => format(t)) }],
      series: [
        {},
        { label, stroke: "#2364aa", width: 2, fill: "rgba(35,100,170,0.08)", spanGaps: false, points: { show: data[0].length <= 60, size: 5 }, value: (_u, v) => format(v) },
      ],
      hooks: recordDraw(element),
    },
    data,
    element,
  );
}

/** A bar chart, one bar per category. */
export function barChart(container: HTMLElement, label: string, labels: string[], values: (number | null)[], format: (v: number | null) => string): uPlot {
  const element = h("div", { class: "chart" });
  container.append(element);
  const xs = labels.map((_, i) => i);
  return new uPlot(
    {
      width: width(container),
      height: 220,
      legend: { show: false },
      scales: { x: { time: false, range: [-0.5, Math.max(0.5, labels.length - 0.5)] }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: "#555", splits: () => xs, values: (_u, ticks) => ticks.map((t) => labels[t] ?? ""), gap: 4 },
        { stroke: "#555", size: 70, values: (_u, ticks) => ticks.map((t) => format(t)) },
      ],
      series: [{}, { label, fill: "#2364aa", stroke: "#1b4f86", paths: uPlot.paths.bars!({ size: [0.6, 80] }), points: { show: false } }],
      hooks: recordDraw(element),
    },
    [xs, values],
    element,
  );
}
