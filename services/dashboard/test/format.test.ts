import { describe, expect, it } from "vitest";

import { countOf, formatAge, formatChange, formatInstant, formatMetric, formatMinutes, formatNumber, formatRatio, formatTrend, humanize, trendArrow } from "../src/format";

describe("numbers", () => {
  it("rounds to the given decimals and drops trailing zeros", () => {
    expect(formatNumber(81.0612)).toBe("81.06");
    expect(formatNumber(41)).toBe("41");
    expect(formatNumber(1234.5, 1)).toBe("1,234.5");
    expect(formatNumber(null)).toBe("—");
    expect(formatNumber(Number.NaN)).toBe("—");
  });
  it("shows ratios as percentages and signs changes", () => {
    expect(formatRatio(0.458756)).toBe("45.9 %");
    expect(formatRatio(null)).toBe("—");
    expect(formatChange(6.85)).toBe("+6.85 %");
    expect(formatChange(-2)).toBe("−2 %");
    expect(formatChange(0)).toBe("±0 %");
  });
});

describe("durations", () => {
  it("picks minutes, hours or days", () => {
    expect(formatMinutes(45)).toBe("45 min");
    expect(formatMinutes(1980)).toBe("33 h");
    expect(formatMinutes(7260)).toBe("5 d");
    expect(formatMetric("cycle_time", 90)).toBe("1.5 h");
    expect(formatMetric("wip", 12)).toBe("12");
    expect(formatMetric("time_to_restore", 975)).toBe("16.3 h");
    expect(formatMetric("lead_time_for_changes", 2880)).toBe("2 d");
    expect(formatMetric("change_failure_rate", 0.6)).toBe("60 %");
  });
});

describe("times and words", () => {
  it("formats instants in UTC and ages from now", () => {
    expect(formatInstant("2026-03-14T12:00:00.000000Z")).toBe("2026-03-14 12:00 UTC");
    expect(formatInstant(null)).toBe("—");
    const now = new Date("2026-03-14T12:00:00Z");
    expect(formatAge("2026-03-14T11:59:30Z", now)).toBe("just now");
    expect(formatAge("2026-03-14T11:55:00Z", now)).toBe("5 min ago");
    expect(formatAge("2026-03-14T09:00:00Z", now)).toBe("3 h ago");
    expect(formatAge("2026-03-10T12:00:00Z", now)).toBe("4 d ago");
    expect(formatAge(null, now)).toBe("never");
  });
  it("names arrows and identifiers", () => {
    expect(trendArrow("up")).toBe("▲");
    expect(trendArrow("down")).toBe("▼");
    expect(trendArrow(null)).toBe("·");
    expect(humanize("delivery_predictability_index")).toBe("Delivery predictability index");
    expect(countOf(1, "event")).toBe("1 event");
    expect(countOf(1200, "event")).toBe("1,200 events");
  });
});

describe("trends", () => {
  it("calls a rise from nothing new and keeps the change otherwise", () => {
    expect(formatTrend("up", null)).toBe(`${trendArrow("up")} new`);
    expect(formatTrend("down", -12.5)).toBe(`${trendArrow("down")} −12.5 %`);
    expect(formatTrend(null, null)).toBe(`${trendArrow(null)} —`);
  });
});
