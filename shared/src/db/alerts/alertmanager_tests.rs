//! Unit tests of the Alertmanager shapes: labels, annotations, links and silences.

use super::*;

fn alert(metric_key: &str, alert_type: &str) -> Alert {
    let at = DateTime::parse_from_rfc3339("2026-03-20T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    Alert {
        id: Uuid::from_u128(7),
        project_id: Uuid::from_u128(1),
        metric_key: metric_key.into(),
        alert_type: alert_type.into(),
        severity: "critical".into(),
        state: "firing".into(),
        value: Some(21.0),
        threshold: Some(20.0),
        context: json!({}),
        created_at: at,
        updated_at: at,
        resolved_at: None,
        acknowledged_at: Some(at + chrono::TimeDelta::minutes(5)),
        acknowledged_by: Some("ana's key".into()),
        ack_reason: Some("on it".into()),
        ack_expires_at: Some(at + chrono::TimeDelta::minutes(95)),
    }
}

fn links() -> Links {
    Links {
        public_url: "https://flowmeter.example.com".into(),
        runbook_url: "https://wiki.example.com/RUNBOOK.md".into(),
    }
}

#[test]
fn an_alert_carries_the_labels_annotations_and_links_of_the_spec() {
    let a = alert("ini_backlog", "threshold");
    let ends = a.created_at + chrono::TimeDelta::minutes(4);
    let posted = postable_alert(&a, "Payments", "critical", ends, &links());
    let dashboard = format!(
        "https://flowmeter.example.com/#/projects/{}/alerts/{}",
        a.project_id, a.id
    );
    assert_eq!(
        posted["labels"],
        json!({"alertname": "FlowmeterIniBacklog", "project_id": a.project_id,
               "project": "Payments", "severity": "critical", "metric_key": "ini_backlog",
               "alert_type": "threshold", "source": "flowmeter"})
    );
    let annotations = &posted["annotations"];
    assert_eq!(annotations["value"], "21");
    assert_eq!(annotations["threshold"], "20");
    assert_eq!(annotations["dashboard_url"], json!(dashboard));
    assert_eq!(
        annotations["runbook_url"],
        "https://wiki.example.com/RUNBOOK.md#flowmeterintegrationbackloghigh"
    );
    assert_eq!(
        annotations["summary"],
        "ini_backlog breached its critical level in project Payments"
    );
    assert_eq!(posted["generatorURL"], json!(dashboard));
    assert_eq!(posted["startsAt"], "2026-03-20T12:00:00+00:00");
    assert_eq!(posted["endsAt"], "2026-03-20T12:04:00+00:00");
}

#[test]
fn anomalies_and_summary_paths_link_the_general_runbook_section() {
    for (key, kind, name) in [
        ("DPI", "anomaly", "FlowmeterDPIAnomaly"),
        (
            "operational.wip.total_count",
            "threshold",
            "FlowmeterOperationalWipTotalCount",
        ),
    ] {
        let a = alert(key, kind);
        let posted = postable_alert(&a, "P", "warning", a.created_at, &links());
        assert_eq!(posted["labels"]["alertname"], name);
        assert_eq!(
            posted["annotations"]["runbook_url"],
            "https://wiki.example.com/RUNBOOK.md#flowmeters-own-alerts-in-alertmanager"
        );
    }
}

#[test]
fn a_silence_matches_the_rule_in_the_project_until_the_acknowledgement_lapses() {
    let a = alert("DPI", "threshold");
    let silence = postable_silence(&a).unwrap();
    assert_eq!(
        silence["matchers"],
        json!([
            {"name": "alertname", "value": "FlowmeterDPI", "isRegex": false, "isEqual": true},
            {"name": "project_id", "value": a.project_id.to_string(), "isRegex": false,
             "isEqual": true},
        ])
    );
    assert_eq!(silence["endsAt"], "2026-03-20T13:35:00+00:00");
    assert_eq!(silence["createdBy"], "ana's key");
    assert_eq!(silence["comment"], "on it");
    let without_expiry = Alert {
        ack_expires_at: None,
        ..a
    };
    assert_eq!(postable_silence(&without_expiry), None);
}
