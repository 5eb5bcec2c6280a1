// Browser tests of the dashboard: Debian's chromium driven by playwright-core against a
// running flowmeter-api with folded projects. Started by tests/tests/it/dashboard.rs,
// which passes (environment):
//   FLOWMETER_DASHBOARD_URL   the API's base URL (http://127.0.0.1:port)
//   FLOWMETER_ADMIN_KEY, FLOWMETER_PLANNER_KEY, FLOWMETER_VIEWER_KEY, FLOWMETER_INGEST_KEY
//   FLOWMETER_PROJECTS        comma list of project ids (the first two have many tasks)
//   FLOWMETER_ALERT           project_id/alert_id of a firing, unacknowledged alert
//   FLOWMETER_EMPTY_PROJECT   a project without events (the alerted one is left stale)
//   FLOWMETER_SCREENSHOTS     directory for one PNG per view
//   CHROMIUM                  the browser (default /usr/bin/chromium)
// Prints one JSON line of measurements last; exits 1 with every failed check listed.

import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const base = process.env.FLOWMETER_DASHBOARD_URL;
const keys = {
  admin: process.env.FLOWMETER_ADMIN_KEY,
  planner: process.env.FLOWMETER_PLANNER_KEY,
  viewer: process.env.FLOWMETER_VIEWER_KEY,
  ingest: process.env.FLOWMETER_INGEST_KEY,
};
const projects = (process.env.FLOWMETER_PROJECTS ?? "").split(",").filter(Boolean);
const [alertProject, alertId] = (process.env.FLOWMETER_ALERT ?? "/").split("/");
const shots = process.env.FLOWMETER_SCREENSHOTS ?? "target/dashboard-screenshots";
mkdirSync(shots, { recursive: true });

const failures = [];
const measured = {};
function check(ok, what) {
  if (!ok) failures.push(what);
  return ok;
}

async function api(path, key = keys.admin) {
  const response = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${key}` } });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });

/** A page with the key already in sessionStorage, watched for console errors and foreign requests. */
async function open(name, key) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
  if (key) await context.addInitScript((k) => sessionStorage.setItem("flowmeter.api_key", k), key);
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") failures.push(`${name}: console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => failures.push(`${name}: page error: ${error.message}`));
  page.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(`${base}/`) && !url.startsWith(`blob:${base}/`)) failures.push(`${name}: request to another address: ${url}`);
  });
  return { context, page };
}

/** Waits until the page has finished a render, and nothing is loading. */
async function ready(page) {
  await page.waitForFunction(() => document.getElementById("app")?.dataset.ready !== undefined && !document.querySelector('[data-testid="notice-loading"]'), null, { timeout: 20000 });
}

/** Runs an action and waits for the render it causes to finish. */
async function after(page, action) {
  const before = await page.evaluate(() => Number(document.getElementById("app")?.dataset.ready ?? 0));
  await action();
  await page.waitForFunction((n) => Number(document.getElementById("app")?.dataset.ready ?? 0) > n && !document.querySelector('[data-testid="notice-loading"]'), before, { timeout: 20000 });
}

async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

function near(text, value) {
  if (value === null) return text.trim() === "—";
  return Math.abs(Number(text.replace(/,/g, "")) - Number(value.toFixed(2))) < 1e-9;
}

async function checkCards(page, projectId, label) {
  const summary = await api(`/v1/metrics/summary?project_id=${projectId}`);
  const northStar = summary.metrics.north_star;
  for (const key of ["delivery_predictability_index", "flow_efficiency_score", "integration_reliability_score"]) {
    const card = page.locator(`[data-testid="card-${key}"]`);
    const value = card.locator('[data-testid="card-value"]');
    const raw = await value.getAttribute("data-value");
    const expected = northStar[key].value;
    check(raw === String(expected), `${label}: card ${key} holds ${raw}, the API says ${expected}`);
    check(near(await value.innerText(), expected), `${label}: card ${key} shows ${await value.innerText()} for ${expected}`);
    if ("trend" in northStar[key]) {
      const trend = card.locator('[data-testid="card-trend"]');
      check((await trend.getAttribute("data-trend")) === String(northStar[key].trend), `${label}: ${key} trend`);
      check((await trend.getAttribute("data-change")) === String(northStar[key].change_pct), `${label}: ${key} change`);
    }
    const components = northStar[key].components ?? northStar[key];
    for (const dd of await card.locator("dd").all()) {
      const name = (await dd.getAttribute("data-testid")).replace("component-", "");
      check((await dd.getAttribute("data-value")) === String(components[name]), `${label}: ${key}.${name} holds ${await dd.getAttribute("data-value")}, the API says ${components[name]}`);
    }
  }
  return northStar;
}

/** The DORA cards: each key's value, performance level and parts as the summary has them. */
async function checkDora(page, projectId, label) {
  const dora = (await api(`/v1/metrics/summary?project_id=${projectId}`)).metrics.dora;
  const values = { deployment_frequency: "per_day", lead_time_for_changes: "p50_minutes", change_failure_rate: "rate", time_to_restore: "p50_minutes" };
  for (const [key, field] of Object.entries(values)) {
    const card = page.locator(`[data-testid="dora-${key}"]`);
    const raw = await card.locator('[data-testid="card-value"]').getAttribute("data-value");
    check(raw === String(dora[key][field]), `${label}: DORA ${key} holds ${raw}, the API says ${dora[key][field]}`);
    const level = await card.locator('[data-testid="performance-level"]').getAttribute("data-level");
    check(level === String(dora[key].performance_level), `${label}: DORA ${key} level ${level}, the API says ${dora[key].performance_level}`);
    for (const dd of await card.locator("dd").all()) {
      const name = (await dd.getAttribute("data-testid")).replace("component-", "");
      check((await dd.getAttribute("data-value")) === String(dora[key][name]), `${label}: DORA ${key}.${name} holds ${await dd.getAttribute("data-value")}, the API says ${dora[key][name]}`);
    }
  }
  return dora;
}

async function trendCounts(page, projectId) {
  const granularity = await page.locator("#granularity").inputValue();
  const start = await page.locator("#trend-start").inputValue();
  const end = await page.locator("#trend-end").inputValue();
  const counts = {};
  for (const panel of await page.locator("[data-metric]").all()) {
    const metric = await panel.getAttribute("data-metric");
    const body = await api(`/v1/metrics/trends?project_id=${projectId}&metric=${metric}&granularity=${granularity}&start_date=${start}&end_date=${end}`);
    const chart = panel.locator(".chart");
    if (body.data.length > 0 && body.data.every((p) => p.value === null)) {
      check((await panel.locator('[data-testid="notice-empty"]').count()) === 1, `trend ${metric}: ${body.data.length} buckets without a value say so`);
      counts[metric] = 0;
      continue;
    }
    const drawn = body.data.length === 0 ? 0 : Number(await chart.getAttribute("data-points"));
    check(drawn === body.data.length, `trend ${metric} (${granularity}) draws ${drawn} points, the API returns ${body.data.length}`);
    if (body.data.length > 0) {
      const nonNull = body.data.filter((p) => p.value !== null).length;
      check(Number(await chart.getAttribute("data-drawn")) === nonNull, `trend ${metric}: ${await chart.getAttribute("data-drawn")} values drawn, ${nonNull} non-null from the API`);
    }
    counts[metric] = drawn;
  }
  return counts;
}

try {
  const [first, second] = projects;

  // No key yet: the page asks for one.
  {
    const { context, page } = await open("no key", null);
    await page.goto(`${base}/`);
    await page.waitForSelector('[data-testid="key-form"]');
    await shot(page, "01-key-form");
    // Entering the admin key opens the first project's overview.
    await page.fill("#api-key", keys.admin);
    await page.click('[data-testid="api-key-submit"]');
    await page.waitForSelector('[data-testid="cards"]');
    check(await page.evaluate(() => sessionStorage.getItem("flowmeter.api_key")) === keys.admin, "the key is kept in sessionStorage");
    await context.close();
  }

  // First load with a key: the cards' render time, and exactly the API's numbers.
  const { context, page } = await open("admin", keys.admin);
  const started = Date.now();
  await page.goto(`${base}/#/projects/${first}/overview`);
  await page.waitForSelector('[data-testid="cards"]');
  measured.cards_visible_ms = Date.now() - started;
  measured.cards_render_ms = Number(await page.locator('[data-testid="cards"]').getAttribute("data-render-ms"));
  await ready(page);
  const firstCards = await checkCards(page, first, "first project");
  const firstDora = await checkDora(page, first, "first project");
  check(firstDora.change_failure_rate.rate !== null, "the first project has DORA numbers to show");
  check(await page.locator('[data-testid="milestones"], [data-testid="notice-empty"]').count() > 0, "milestones or their empty state");
  const freshness = page.locator('[data-testid="freshness"]');
  check(["fresh", "behind", "stale"].includes(await freshness.getAttribute("data-state")), `freshness badge state ${await freshness.getAttribute("data-state")}`);
  await shot(page, "02-overview");

  // Switching project changes the cards to the other project's numbers.
  await after(page, () => page.selectOption("#project-picker", second));
  await page.waitForSelector('[data-testid="cards"]');
  const secondCards = await checkCards(page, second, "second project");
  const secondDora = await checkDora(page, second, "second project");
  check(secondDora.deployment_frequency.per_day === null, "a project without deployments has null DORA keys (shown as no data)");
  check(JSON.stringify(firstCards) !== JSON.stringify(secondCards), "the two projects' cards differ (switching project changes what is drawn)");

  // Trends: every trend metric, as many points as the API returns; granularity changes them.
  await after(page, () => page.click('[data-testid="tab-trends"]'));
  const metrics = await page.locator("[data-metric]").count();
  const catalog = (await api("/v1/openapi.json")).components.schemas.TrendMetric.enum;
  check(metrics === catalog.length, `${metrics} trend charts for ${catalog.length} trend metrics`);
  const daily = await trendCounts(page, second);
  await shot(page, "03-trends-day");
  await after(page, () => page.selectOption("#granularity", "week"));
  const weekly = await trendCounts(page, second);
  check(weekly.throughput !== daily.throughput && weekly.throughput > 0, `weekly throughput draws ${weekly.throughput} points, daily ${daily.throughput}`);
  await shot(page, "04-trends-week");
  // The project that deploys draws its DORA trends.
  await after(page, () => page.selectOption("#project-picker", first));
  const deploying = await trendCounts(page, first);
  check(deploying.change_failure_rate > 0 && deploying.deployments > 0, `the deploying project draws DORA trends (${deploying.deployments} deployment points, ${deploying.change_failure_rate} failure-rate points)`);
  await shot(page, "04b-trends-dora");
  await after(page, () => page.selectOption("#project-picker", second));

  // Breakdown: switching the dimension changes bars and rows to the API's.
  await after(page, () => page.click('[data-testid="tab-breakdown"]'));
  const rows = async (dimension) => {
    const body = await api(`/v1/metrics/breakdown?project_id=${second}&metric=${await page.locator("#breakdown-metric").inputValue()}&dimension=${dimension}&time_range=${await page.locator("#breakdown-range").inputValue()}`);
    const labels = await page.locator('[data-testid="breakdown-table"] tbody tr td:first-child').allInnerTexts();
    check(labels.length === body.breakdown.length, `breakdown by ${dimension}: ${labels.length} rows, the API has ${body.breakdown.length}`);
    const chart = page.locator('[data-testid="breakdown-chart"] .chart');
    const points = (await chart.count()) > 0 ? await chart.getAttribute("data-points") : "0";
    check(Number(points ?? 0) === body.breakdown.length, `breakdown by ${dimension}: ${points} bars for ${body.breakdown.length} rows`);
    return labels.join("|");
  };
  const byAssignee = await rows(await page.locator("#breakdown-dimension").inputValue());
  await shot(page, "05-breakdown");
  await after(page, () => page.selectOption("#breakdown-dimension", "state"));
  const byState = await rows("state");
  check(byAssignee !== byState, "switching the breakdown dimension changes the rows");
  // A DORA key splits by environment or service only, with no task filters.
  await after(page, () => page.selectOption("#project-picker", first));
  await after(page, () => page.selectOption("#breakdown-metric", "change_failure_rate"));
  const offered = await page.locator("#breakdown-dimension option").evaluateAll((os) => os.map((o) => o.value));
  check(JSON.stringify(offered) === JSON.stringify(["environment", "service"]), `a DORA key offers ${offered}`);
  check((await page.locator('[data-testid^="filter-"]').count()) === 0, "a DORA breakdown has no task filters");
  {
    const body = await api(`/v1/metrics/breakdown?project_id=${first}&metric=change_failure_rate&dimension=environment&time_range=${await page.locator("#breakdown-range").inputValue()}`);
    const shown = await page.locator('[data-testid="breakdown-table"] tbody tr td:nth-child(2)').evaluateAll((tds) => tds.map((td) => td.getAttribute("data-value")));
    check(JSON.stringify(shown) === JSON.stringify(body.breakdown.map((r) => String(r.value))), `DORA breakdown by environment shows ${shown}, the API ${body.breakdown.map((r) => r.value)}`);
    check(body.breakdown.length > 0, "the DORA breakdown has rows");
  }
  await shot(page, "05b-breakdown-dora");
  await after(page, () => page.selectOption("#breakdown-metric", "cycle_time"));
  await after(page, () => page.selectOption("#project-picker", second));

  // Drill-down: sorted by value both ways, paged, CSV.
  await after(page, () => page.click('[data-testid="tab-drilldown"]'));
  const metric = await page.locator("#drilldown-metric").inputValue();
  const tasks = async () => page.locator('[data-testid="drilldown-table"] tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-task")));
  const expectPage = async (sort, order, offset) => {
    const body = await api(`/v1/metrics/drilldown?project_id=${second}&metric=${metric}&sort_by=${sort}&sort_order=${order}&limit=25&offset=${offset}`);
    const shown = await tasks();
    check(JSON.stringify(shown) === JSON.stringify(body.items.map((i) => i.task_id)), `drill-down ${sort} ${order} at ${offset}: the page shows ${shown.slice(0, 3)}…, the API ${body.items.slice(0, 3).map((i) => i.task_id)}…`);
    return body;
  };
  const descending = await expectPage("value", "desc", 0);
  check(descending.pagination.total > 25, `drill-down has more than one page (${descending.pagination.total} tasks)`);
  await after(page, () => page.click('[data-testid="sort-value"]'));
  const ascending = await expectPage("value", "asc", 0);
  const values = ascending.items.map((i) => i.value).filter((v) => v !== null);
  check(values.every((v, i) => i === 0 || values[i - 1] <= v), "ascending values");
  await after(page, () => page.click('[data-testid="page-next"]'));
  await expectPage("value", "asc", 25);
  await shot(page, "06-drilldown");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click('[data-testid="download-csv"]')]);
  const csvPath = `${shots}/drilldown.csv`;
  await download.saveAs(csvPath);
  const csv = (await import("node:fs")).readFileSync(csvPath, "utf8");
  check(csv.trim().split("\r\n").length === descending.pagination.total + 1, `CSV has ${csv.trim().split("\r\n").length - 1} rows for ${descending.pagination.total} tasks`);
  await context.close();

  // A viewer sees the button disabled with the reason (before the planner acknowledges).
  {
    const { context, page } = await open("viewer", keys.viewer);
    await page.goto(`${base}/#/projects/${alertProject}/alerts`);
    await page.waitForSelector('[data-testid="alerts"]');
    await ready(page);
    const buttons = page.locator('[data-testid="ack-button"]');
    check((await buttons.count()) > 0, "the viewer sees unacknowledged alerts with a button");
    for (const button of await buttons.all()) check(await button.isDisabled(), "the viewer's acknowledge button is disabled");
    const reason = await page.locator('[data-testid="ack-status"]').first().innerText();
    check(/planner or admin/.test(reason), `the viewer is told why (${reason})`);
    await shot(page, "09-alerts-viewer");
    await context.close();
  }

  // A planner acknowledges the alert a deep link opens; the API then reports it acknowledged.
  {
    const { context, page } = await open("planner", keys.planner);
    await page.goto(`${base}/#/projects/${alertProject}/alerts/${alertId}`);
    const selected = page.locator('[data-testid="alert-selected"]');
    await selected.waitFor();
    check((await selected.getAttribute("data-alert")) === alertId, "the deep link opens the alert");
    check((await page.locator('[data-testid="freshness"]').getAttribute("data-state")) === "stale", "events after an old snapshot make the badge say stale");
    check(/stale: 1 event behind/.test(await page.locator('[data-testid="freshness"]').innerText()), "the stale badge gives the lag");
    await shot(page, "07-alert-deep-link");
    await selected.locator('[data-testid="ack-reason"]').fill("looking into the backlog");
    await after(page, () => selected.locator('[data-testid="ack-button"]').click());
    await page.waitForSelector('[data-testid="alert-selected"] [data-testid="acknowledged"]');
    const alerts = await api(`/v1/metrics/alerts?project_id=${alertProject}`);
    const alert = alerts.items.find((a) => a.id === alertId);
    check(alert?.acknowledged_at && alert.ack_reason === "looking into the backlog", `the API reports the alert acknowledged (${JSON.stringify(alert)})`);
    await shot(page, "08-alert-acknowledged");
    // The state filter narrows the list to what the API returns for it.
    await after(page, () => page.selectOption("#alert-state", "resolved"));
    const resolved = await api(`/v1/metrics/alerts?project_id=${alertProject}&state=resolved&limit=500`);
    check((await page.locator("[data-alert]").count()) === resolved.items.length, "the state filter shows the API's resolved alerts");
    await context.close();
  }

  // A project without events, and an API that does not answer.
  {
    const { context, page } = await open("empty states", keys.admin);
    await page.goto(`${base}/#/projects/${process.env.FLOWMETER_EMPTY_PROJECT}/overview`);
    await page.waitForSelector('[data-testid="freshness"][data-state="empty"]');
    check(/no events yet/.test(await page.locator("#view").innerText()), "a project without events says so");
    await shot(page, "11-project-without-events");
    await context.close();
  }
  {
    const { context, page } = await open("API down", keys.admin);
    page.removeAllListeners("console");
    page.on("console", (m) => {
      // The refused requests are logged as failed loads; anything else is an error.
      if (m.type() === "error" && !/ERR_FAILED|Failed to fetch/.test(m.text())) failures.push(`API down: console error: ${m.text()}`);
    });
    // The page loads, then every API request fails as if the server had gone.
    await page.route(/\/v1\//, (route) => route.abort("failed"));
    await page.goto(`${base}/`);
    await page.waitForSelector('[data-testid="notice-error"]');
    check(/does not answer/.test(await page.locator('[data-testid="notice-error"]').innerText()), "an API that does not answer is named");
    await shot(page, "12-api-down");
    await context.close();
  }

  // A key without the viewer role is told so.
  {
    const { context, page } = await open("ingest key", keys.ingest);
    page.removeAllListeners("console");
    page.on("console", (m) => {
      // The browser logs the API's 403 as a failed resource load; anything else is an error.
      if (m.type() === "error" && !/403/.test(m.text())) failures.push(`ingest key: console error: ${m.text()}`);
    });
    await page.goto(`${base}/`);
    await page.waitForSelector('[data-testid="notice-error"]');
    check(/no access/.test(await page.locator('[data-testid="notice-error"]').innerText()), "a key without access is told so");
    await shot(page, "10-key-without-access");
    // It can be swapped for another key without reloading.
    await after(page, () => page.click('[data-testid="use-another-key"]'));
    check(await page.locator('[data-testid="key-form"]').count() === 1, "'Use another key' asks for a key again");
    await context.close();
  }
} catch (error) {
  failures.push(`stopped: ${error.stack ?? error}`);
} finally {
  await browser.close();
}

console.log(JSON.stringify(measured));
if (failures.length > 0) {
  console.error(failures.join("\n"));
  process.exit(1);
}
