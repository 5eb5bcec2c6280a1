// The dashboard's shell: asks for a key (unless auth is off), lists the projects the key
// may read, shows the picked project's freshness and one view at a time, and refreshes
// every 60 s (each GET revalidated with If-None-Match).

import "./style.css";

import { ApiDown, ApiError, get, stats, storedKey, storeKey } from "./api";
import type { Catalog, Context, Session } from "./context";
import { clear, h, notice } from "./dom";
import { countOf, formatAge } from "./format";
import { closedList, type Freshness, formatRoute, freshnessState, parseRoute, type Route, type View, VIEWS } from "./shape";
import { renderAlerts } from "./views/alerts";
import { renderBreakdown } from "./views/breakdown";
import { renderDrilldown } from "./views/drilldown";
import { renderOverview } from "./views/overview";
import { renderTrends } from "./views/trends";

export const REFRESH_SECONDS = 60;

interface Project {
  id: string;
  name: string;
  status: string;
  event_count: number;
  last_event_at: string | null;
  freshness: Freshness;
}

const RENDERERS: Record<View, (ctx: Context, view: HTMLElement) => Promise<void>> = {
  overview: renderOverview,
  trends: renderTrends,
  breakdown: renderBreakdown,
  drilldown: renderDrilldown,
  alerts: renderAlerts,
};

const TITLES: Record<View, string> = { overview: "Overview", trends: "Trends", breakdown: "Breakdown", drilldown: "Drill-down", alerts: "Alerts" };

const root = document.getElementById("app") as HTMLElement;
let session: Session | null = null;
let catalog: Catalog | null = null;
let projects: Project[] = [];
let rendering = 0;

function describe(error: unknown): HTMLElement {
  if (error instanceof ApiDown) return notice("error", "The Flowmeter API does not answer", "Is flowmeter-api running? The page retries every minute.", error.message);
  if (error instanceof ApiError) {
    if (error.status === 403) return notice("error", "This key has no access here", error.message, "Use a key with the viewer role for this project (flowmeter-api keys create).");
    return notice("error", `The API answered ${error.status} (${error.code})`, error.message);
  }
  return notice("error", "Something went wrong", String(error));
}

function keyForm(message: string | null): HTMLElement {
  const input = h("input", { id: "api-key", "data-testid": "api-key", type: "password", autocomplete: "off", placeholder: "fm_…", size: 70 }) as HTMLInputElement;
  const form = h(
    "form",
    { class: "key-form", "data-testid": "key-form" },
    h("h2", {}, "Enter an API key"),
    h("p", {}, "This Flowmeter asks for a key. Create one with ", h("code", {}, "flowmeter-api keys create --project '*' --roles viewer --name dashboard"), " (make run prints an admin key). It is kept in this tab only (sessionStorage)."),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
    input,
    h("button", { type: "submit", "data-testid": "api-key-submit" }, "Use this key"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    storeKey(input.value.trim() || null);
    void start();
  });
  return form;
}

function freshnessBadge(project: Project | undefined): HTMLElement {
  if (!project) return h("span", {});
  const f = project.freshness;
  const state = freshnessState(f, new Date());
  const text: Record<string, string> = {
    empty: "no events yet",
    never: `not folded yet (${countOf(f.lag_events, "event")} waiting)`,
    fresh: `up to date · ${formatAge(f.captured_at, new Date())}`,
    behind: `${countOf(f.lag_events, "event")} behind · ${formatAge(f.captured_at, new Date())}`,
    stale: `stale: ${countOf(f.lag_events, "event")} behind, last fold ${formatAge(f.captured_at, new Date())}`,
  };
  return h("span", { class: `badge freshness-${state}`, "data-testid": "freshness", "data-state": state, "data-lag": f.lag_events, title: `folded up to event ${f.as_of_seq} of ${f.log_head_seq}` }, text[state]);
}

function navigate(change: Partial<Route>): void {
  const current = parseRoute(location.hash);
  const next: Route = { ...current, ...change };
  if (change.view && change.view !== "alerts") next.alertId = null;
  location.hash = formatRoute(next);
}

async function loadCatalog(): Promise<Catalog> {
  const document = await get<unknown>("/v1/openapi.json");
  return {
    trendMetrics: closedList(document, "TrendMetric"),
    granularities: closedList(document, "Granularity"),
    breakdownMetrics: closedList(document, "BreakdownMetric"),
    dimensions: closedList(document, "BreakdownDimension"),
    doraMetrics: closedList(document, "DoraMetric"),
    doraDimensions: closedList(document, "DoraDimension"),
    timeRanges: closedList(document, "TimeRange"),
    drilldownMetrics: closedList(document, "DrilldownMetric"),
    sortFields: closedList(document, "SortField"),
    severities: closedList(document, "AlertSeverity"),
    states: closedList(document, "AlertState"),
  };
}

function shell(project: Project, route: Route): { main: HTMLElement } {
  const picker = h("select", { id: "project-picker", "data-testid": "project-picker", "aria-label": "Project" }) as HTMLSelectElement;
  for (const p of projects) {
    const option = h("option", { value: p.id }, `${p.name}${p.status !== "active" ? ` (${p.status})` : ""}`) as HTMLOptionElement;
    option.selected = p.id === project.id;
    picker.append(option);
  }
  picker.addEventListener("change", () => navigate({ projectId: picker.value, alertId: null }));
  const tabs = h(
    "nav",
    { class: "tabs" },
    VIEWS.map((v) => h("a", { href: formatRoute({ projectId: project.id, view: v, alertId: null }), class: v === route.view ? "active" : "", "data-testid": `tab-${v}` }, TITLES[v])),
  );
  const signOut = session?.auth_required
    ? h("button", { type: "button", class: "link", "data-testid": "forget-key", onclick: () => { storeKey(null); void start(); } }, "Forget key")
    : h("span", { class: "muted" }, "authentication is off");
  const main = h("main", { id: "view", "data-testid": `view-${route.view}` });
  clear(
    root,
    h("header", { class: "top" }, h("h1", {}, "Flowmeter"), picker, freshnessBadge(project), h("span", { class: "spacer" }), h("span", { class: "muted" }, session?.roles.join(", ") ?? ""), signOut),
    tabs,
    main,
    h("footer", { class: "muted", "data-testid": "footer" }, `Refreshes every ${REFRESH_SECONDS} s · ${stats.requests} requests, ${stats.notModified} not modified`),
  );
  return { main };
}

/** Renders the page for the current route; `#app[data-ready]` names the last finished render. */
async function render(): Promise<void> {
  const ticket = ++rendering;
  try {
    await renderRoute(ticket);
  } finally {
    if (ticket === rendering) root.dataset.ready = String(ticket);
  }
}

async function renderRoute(ticket: number): Promise<void> {
  if (!session || !catalog) return;
  const route = parseRoute(location.hash);
  try {
    const list = await get<{ data: Project[] }>("/v1/projects?limit=500");
    projects = list.data;
  } catch (error) {
    // A key that cannot list projects can be swapped for another one from here.
    const another = session.auth_required ? h("button", { type: "button", "data-testid": "use-another-key", onclick: () => { storeKey(null); void start(); } }, "Use another key") : null;
    clear(root, h("header", { class: "top" }, h("h1", {}, "Flowmeter")), describe(error), ...(another ? [another] : []));
    return;
  }
  if (projects.length === 0) {
    clear(root, h("header", { class: "top" }, h("h1", {}, "Flowmeter")), notice("empty", "No projects yet", session.project_id ? "This key is for a project that has no events yet." : "Send events to /v1/events (docs/EVENTS.md) or load the demo (flowmeter-worker demo-data); projects appear with their first event."));
    return;
  }
  const project = projects.find((p) => p.id === route.projectId);
  if (!project) {
    if (route.projectId) {
      clear(root, h("header", { class: "top" }, h("h1", {}, "Flowmeter")), notice("error", "This key cannot see that project", `No project ${route.projectId} among the ${projects.length} this key may read.`), h("a", { href: formatRoute({ projectId: projects[0].id, view: "overview", alertId: null }) }, `Open ${projects[0].name}`));
      return;
    }
    // The hash change renders again.
    navigate({ projectId: projects[0].id, view: "overview" });
    return;
  }
  const { main } = shell(project, route);
  if (project.event_count === 0) {
    main.append(notice("empty", "This project has no events yet", "Its numbers appear once producers send events and the worker folds them."));
    return;
  }
  if (!project.freshness.captured_at) {
    main.append(notice("info", "Waiting for the worker", `${project.event_count} events are stored but not folded yet. Is flowmeter-worker running? This page refreshes every ${REFRESH_SECONDS} s.`));
    return;
  }
  main.append(notice("loading", "Loading…"));
  const ctx: Context = { projectId: project.id, session, catalog, route, snapshotTime: project.freshness.captured_at, navigate, refresh: () => void render() };
  try {
    await RENDERERS[route.view](ctx, main);
  } catch (error) {
    if (ticket === rendering) clear(main, describe(error));
  }
}

async function start(): Promise<void> {
  const ticket = ++rendering;
  try {
    await connect();
  } finally {
    if (ticket === rendering) root.dataset.ready = String(ticket);
  }
}

async function connect(): Promise<void> {
  clear(root, notice("loading", "Connecting to the Flowmeter API…"));
  try {
    catalog = await loadCatalog();
    session = await get<Session>("/v1/session");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      storeKey(null);
      clear(root, keyForm(`That key was refused: ${error.message}`));
      return;
    }
    clear(root, describe(error));
    return;
  }
  if (session.auth_required && !session.authenticated) {
    clear(root, keyForm(null));
    return;
  }
  await render();
}

window.addEventListener("hashchange", () => void render());
setInterval(() => {
  // Someone typing (a reason, a filter) is not interrupted; the next tick refreshes.
  if (document.activeElement instanceof HTMLInputElement) return;
  if (!catalog) void start();
  else if (session && (!session.auth_required || session.authenticated)) void render();
}, REFRESH_SECONDS * 1000);
void start();
