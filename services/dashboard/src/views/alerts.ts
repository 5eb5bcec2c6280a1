// Alerts: filtered by state and severity; each can be acknowledged with a reason by a
// planner or admin key (the button is disabled, with the reason, for other keys). A deep
// link (#/projects/{id}/alerts/{alert_id}) opens one alert.

import { ApiError, get, post } from "../api";
import { type Context, remember, setting } from "../context";
import { clear, field, h, notice, select } from "../dom";
import { formatInstant, formatNumber, humanize } from "../format";
import { canAcknowledge, query } from "../shape";

export interface Alert {
  id: string;
  metric_key: string;
  alert_type: string;
  severity: string;
  state: string;
  value: number | null;
  threshold: number | null;
  created_at: string;
  resolved_at: string | null;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  ack_reason: string | null;
}

function acknowledgeForm(ctx: Context, alert: Alert): HTMLElement {
  if (alert.acknowledged_at) {
    return h("p", { class: "acked", "data-testid": "acknowledged" }, `Acknowledged ${formatInstant(alert.acknowledged_at)} by ${alert.acknowledged_by ?? "?"}: “${alert.ack_reason ?? ""}”`);
  }
  const allowed = canAcknowledge(ctx.session.roles);
  const reason = h("input", { type: "text", "data-testid": "ack-reason", placeholder: "Reason (what you are doing about it)", "aria-label": "Reason", disabled: !allowed, maxlength: 500 }) as HTMLInputElement;
  const why = allowed ? null : `Acknowledging needs a key with the planner or admin role; this key has: ${ctx.session.roles.join(", ") || "no role"}.`;
  const button = h("button", { type: "button", "data-testid": "ack-button", disabled: !allowed, title: why ?? "Acknowledge this alert" }, "Acknowledge") as HTMLButtonElement;
  const status = h("span", { class: "muted", "data-testid": "ack-status" }, why ?? "");
  button.addEventListener("click", async () => {
    if (!reason.value.trim()) {
      status.textContent = "Give a reason first.";
      reason.focus();
      return;
    }
    button.disabled = true;
    status.textContent = "Acknowledging…";
    try {
      await post(`/v1/metrics/alerts/${encodeURIComponent(alert.id)}/acknowledge?project_id=${encodeURIComponent(ctx.projectId)}`, { reason: reason.value.trim() });
      ctx.refresh();
    } catch (error) {
      button.disabled = false;
      status.textContent = error instanceof ApiError ? `Not acknowledged: ${error.message}` : String(error);
    }
  });
  return h("div", { class: "ack" }, reason, button, status);
}

function alertRow(ctx: Context, alert: Alert, selected: boolean): HTMLElement {
  const link = `#/projects/${encodeURIComponent(ctx.projectId)}/alerts/${encodeURIComponent(alert.id)}`;
  return h(
    "article",
    { class: `alert severity-${alert.severity} ${selected ? "selected" : ""}`, id: `alert-${alert.id}`, "data-testid": selected ? "alert-selected" : "alert", "data-alert": alert.id, "data-state": alert.state, "data-severity": alert.severity },
    h(
      "header",
      {},
      h("span", { class: `pill severity-${alert.severity}` }, alert.severity),
      h("span", { class: `pill state-${alert.state}` }, alert.state),
      h("a", { href: link }, `${alert.metric_key} — ${humanize(alert.alert_type)}`),
      h("span", { class: "muted" }, ` since ${formatInstant(alert.created_at)}`),
    ),
    h("p", {}, `Value ${formatNumber(alert.value)} against threshold ${formatNumber(alert.threshold)}${alert.resolved_at ? `; resolved ${formatInstant(alert.resolved_at)}` : ""}.`),
    acknowledgeForm(ctx, alert),
  );
}

export async function renderAlerts(ctx: Context, view: HTMLElement): Promise<void> {
  const state = setting("alerts", "state", "");
  const severity = setting("alerts", "severity", "");
  const change = (name: string) => (value: string) => {
    remember("alerts", name, value);
    ctx.refresh();
  };
  const any = (values: string[]) => ["", ...values];
  const label = (v: string) => (v === "" ? "any" : v);
  const body = await get<{ items: Alert[] }>(`/v1/metrics/alerts?${query({ project_id: ctx.projectId, state, severity, limit: 500 })}`);
  const selectedId = ctx.route.alertId;
  const list = h("div", { class: "alerts", "data-testid": "alerts" }, body.items.map((a) => alertRow(ctx, a, a.id === selectedId)));
  const missing = selectedId && !body.items.some((a) => a.id === selectedId) ? notice("error", "That alert is not here", `No alert ${selectedId} in this project with these filters.`) : null;
  clear(
    view,
    h("div", { class: "controls" }, field("State", select("alert-state", any(ctx.catalog.states), state, change("state"), label)), field("Severity", select("alert-severity", any(ctx.catalog.severities), severity, change("severity"), label))),
    ...(missing ? [missing] : []),
    body.items.length ? list : notice("empty", "No alerts", "No alert matches these filters."),
  );
  view.querySelector(".alert.selected")?.scrollIntoView({ block: "center" });
}
