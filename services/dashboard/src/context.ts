// What every view is given.

import type { Route } from "./shape";

export interface Session {
  auth_required: boolean;
  authenticated: boolean;
  roles: string[];
  project_id: string | null;
}

/** The closed lists, read from the OpenAPI document the server serves. */
export interface Catalog {
  trendMetrics: string[];
  granularities: string[];
  breakdownMetrics: string[];
  dimensions: string[];
  /** The DORA keys among the trend and breakdown metrics, and the dimensions they split by. */
  doraMetrics: string[];
  doraDimensions: string[];
  timeRanges: string[];
  drilldownMetrics: string[];
  sortFields: string[];
  severities: string[];
  states: string[];
}

export interface Context {
  projectId: string;
  session: Session;
  catalog: Catalog;
  route: Route;
  /** The latest snapshot's time (trend ranges default to the 30 days ending then). */
  snapshotTime: string | null;
  navigate(route: Partial<Route>): void;
  /** Re-renders the current view (after an acknowledgement, say). */
  refresh(): void;
}

/** Per-view settings kept while the page is open (granularity, range, filters…). */
export const settings: Record<string, Record<string, string>> = {};

export function setting(view: string, name: string, fallback: string): string {
  return settings[view]?.[name] ?? fallback;
}

export function remember(view: string, name: string, value: string): void {
  settings[view] = { ...(settings[view] ?? {}), [name]: value };
}
