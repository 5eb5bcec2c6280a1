//! Alert notifications in the shape of Alertmanager's webhook.

use serde_json::{json, Value};

use super::Alert;

/// One notification in the shape of Alertmanager's webhook (`version` 4), so receivers
/// built for Alertmanager accept it unchanged.
pub fn alertmanager_payload(alert: &Alert, status: &str) -> Value {
    let labels = json!({
        "alertname": alert_name(&alert.metric_key, &alert.alert_type),
        "project_id": alert.project_id,
        "metric_key": alert.metric_key,
        "alert_type": alert.alert_type,
        "severity": alert.severity,
    });
    let summary = format!(
        "{} {} {} for project {}",
        alert.metric_key,
        if alert.alert_type == "anomaly" {
            "is anomalous"
        } else {
            "breached its"
        },
        if alert.alert_type == "anomaly" {
            String::new()
        } else {
            format!("{} level", alert.severity)
        },
        alert.project_id
    );
    let annotations = json!({
        "summary": summary.replace("  ", " "),
        "description": format!(
            "value {} against threshold {}",
            alert.value.map_or("null".to_owned(), |v| v.to_string()),
            alert.threshold.map_or("null".to_owned(), |v| v.to_string())
        ),
        "alert_id": alert.id,
    });
    let ends_at = alert
        .resolved_at
        .map_or("0001-01-01T00:00:00Z".to_owned(), |t| t.to_rfc3339());
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{project_id=\"{}\"}}", alert.project_id),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "flowmeter",
        "groupLabels": {"project_id": alert.project_id},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": alert.created_at.to_rfc3339(),
            "endsAt": ends_at,
            "generatorURL": "",
            "fingerprint": alert.id.simple().to_string(),
        }],
    })
}

/// The rule's name, the `alertname` label of its alerts: `Flowmeter` and the metric key in
/// camel case (`ini_backlog` → `FlowmeterIniBacklog`), `Anomaly` appended for anomalies.
pub fn alert_name(metric_key: &str, alert_type: &str) -> String {
    format!("Flowmeter{}", rule_base_name(metric_key, alert_type))
}

fn rule_base_name(metric_key: &str, alert_type: &str) -> String {
    let base: String = metric_key
        .split(['.', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |c| {
                c.to_uppercase().collect::<String>() + chars.as_str()
            })
        })
        .collect();
    if alert_type == "anomaly" {
        format!("{base}Anomaly")
    } else {
        base
    }
}
