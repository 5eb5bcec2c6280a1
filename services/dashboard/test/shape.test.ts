import { describe, expect, it } from "vitest";

import { breakdownBars, breakdownDimensions, canAcknowledge, closedList, csvField, defaultRange, drilldownCsv, filtersParam, formatRoute, freshnessState, pageInfo, parseRoute, query, trendSeries } from "../src/shape";

describe("routes", () => {
  it("parses project, view and a deep-linked alert", () => {
    expect(parseRoute("#/projects/p1/alerts/a9")).toEqual({ projectId: "p1", view: "alerts", alertId: "a9" });
    expect(parseRoute("#/projects/p1/trends")).toEqual({ projectId: "p1", view: "trends", alertId: null });
    expect(parseRoute("#/projects/p1")).toEqual({ projectId: "p1", view: "overview", alertId: null });
    expect(parseRoute("#/projects/p1/nonsense")).toEqual({ projectId: "p1", view: "overview", alertId: null });
    expect(parseRoute("")).toEqual({ projectId: null, view: "overview", alertId: null });
  });
  it("formats back what it parses", () => {
    for (const hash of ["#/projects/p1/alerts/a9", "#/projects/p1/drilldown"]) expect(formatRoute(parseRoute(hash))).toBe(hash);
    expect(formatRoute({ projectId: "p1", view: "trends", alertId: "ignored" })).toBe("#/projects/p1/trends");
  });
});

describe("freshness", () => {
  const now = new Date("2026-03-14T12:10:00Z");
  const f = (lag: number, head: number, captured: string | null) => ({ as_of_seq: head - lag, log_head_seq: head, lag_events: lag, captured_at: captured });
  it("tells empty, never folded, fresh, behind and stale apart", () => {
    expect(freshnessState(f(0, 0, null), now)).toBe("empty");
    expect(freshnessState(f(5, 5, null), now)).toBe("never");
    expect(freshnessState(f(0, 50, "2026-03-10T00:00:00Z"), now)).toBe("fresh");
    expect(freshnessState(f(3, 50, "2026-03-14T12:09:00Z"), now)).toBe("behind");
    expect(freshnessState(f(3, 50, "2026-03-14T12:00:00Z"), now)).toBe("stale");
  });
});

describe("series and tables", () => {
  it("keeps one x per API point and nulls as gaps", () => {
    const points = [
      { timestamp: "2026-03-01T00:00:00Z", value: null, dimensions: {}, metadata: { sample_size: 0, confidence_interval: null } },
      { timestamp: "2026-03-02T00:00:00Z", value: 1980, dimensions: {}, metadata: { sample_size: 1, confidence_interval: null } },
    ];
    expect(trendSeries(points)).toEqual([[1772323200, 1772409600], [null, 1980]]);
  });
  it("labels bars by the label, then the value", () => {
    const row = (label: string | null, value: string | null, v: number) => ({ dimension_label: label, dimension_value: value, value: v, percentage: 50, count: 1, trend: { direction: null, change_pct: null } });
    expect(breakdownBars([row("Ana", "ana", 2), row(null, "bo", 3), row(null, null, 4)])).toEqual({ labels: ["Ana", "bo", "(none)"], values: [2, 3, 4] });
  });
  it("writes RFC 4180 CSV", () => {
    expect(csvField('say "hi", ok')).toBe('"say ""hi"", ok"');
    expect(csvField(null)).toBe("");
    const csv = drilldownCsv("cycle_time", [
      { task_id: "t1", task_title: "Task, one", value: 1980, timestamp: "2026-03-04T18:00:00Z", context: { assignee: "ana", state: "integrated" }, contributing_factors: [{ factor: "stage:review", description: "14% in review", impact: 0.14 }] },
    ]);
    expect(csv).toBe(
      "task_id,task_title,cycle_time,timestamp,assignee,milestone,phase,state,task_class,contributing_factors\r\n" +
        't1,"Task, one",1980,2026-03-04T18:00:00Z,ana,,,integrated,,14% in review\r\n',
    );
  });
  it("pages and builds queries", () => {
    expect(pageInfo(60, 25, 50)).toEqual({ page: 3, pages: 3 });
    expect(pageInfo(0, 25, 0)).toEqual({ page: 1, pages: 1 });
    expect(query({ a: "x y", b: null, c: 3, d: "" })).toBe("a=x%20y&c=3");
    expect(filtersParam({ assignee: " ana ", phase: "" })).toBe('{"assignee":"ana"}');
    expect(filtersParam({ phase: " " })).toBeNull();
  });
  it("defaults the range to the 30 days ending on the snapshot's day", () => {
    expect(defaultRange("2026-03-14T12:00:00Z", new Date())).toEqual({ start: "2026-02-13", end: "2026-03-14" });
  });
  it("reads closed lists from the OpenAPI document and roles", () => {
    expect(closedList({ components: { schemas: { Granularity: { enum: ["hour", "day"] } } } }, "Granularity")).toEqual(["hour", "day"]);
    expect(closedList({}, "Granularity")).toEqual([]);
    expect(canAcknowledge(["viewer", "planner"])).toBe(true);
    expect(canAcknowledge(["admin"])).toBe(true);
    expect(canAcknowledge(["viewer"])).toBe(false);
  });
  it("splits task metrics by the task dimensions and DORA keys by theirs", () => {
    const all = ["phase", "milestone", "assignee", "task_class", "state", "environment", "service"];
    const dora = ["deployments", "lead_time_for_changes", "change_failure_rate", "time_to_restore"];
    expect(breakdownDimensions("cycle_time", all, dora, ["environment", "service"])).toEqual(["phase", "milestone", "assignee", "task_class", "state"]);
    expect(breakdownDimensions("change_failure_rate", all, dora, ["environment", "service"])).toEqual(["environment", "service"]);
  });
});
