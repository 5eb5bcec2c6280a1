//! Flowmeter's alerts in a real Alertmanager (SPEC §17): the worker posts them with their
//! labels and annotations, resolves them there, turns acknowledgements into silences, and
//! catches up an Alertmanager that was down; the example configuration passes amtool.

use std::process::Command;
use std::time::{Duration as StdDuration, Instant};

use flowmeter_tests::alertmanager::Alertmanager;
use flowmeter_tests::worker::{metric_value, WorkerProcess};

use super::*;

/// Polls `check` every 200 ms until it returns `Some`; fails after `within`.
macro_rules! eventually {
    ($what:expr, $within:expr, $check:expr) => {{
        let started = Instant::now();
        loop {
            if let Some(value) = $check {
                break value;
            }
            assert!(
                started.elapsed() < $within,
                "timed out waiting for {}",
                $what
            );
            tokio::time::sleep(StdDuration::from_millis(200)).await;
        }
    }};
}

/// The Alertmanager alerts of one project.
async fn alerts_in(am: &Alertmanager, project: Uuid) -> Vec<Value> {
    am.alerts()
        .await
        .into_iter()
        .filter(|a| a["labels"]["project_id"] == json!(project))
        .collect()
}

/// A named project with `n` tasks implemented and not integrated (backlog `n`), 3 h ago.
async fn backlog_project(app: &TestApp, name: &str, n: usize) -> EventBuilder {
    let b = EventBuilder::new();
    app.db
        .client()
        .await
        .execute(
            "INSERT INTO project (id, name) VALUES ($1, $2)",
            &[&b.project_id, &name],
        )
        .await
        .unwrap();
    let mut b = b;
    add_backlog(app, &mut b, 0, n).await;
    b
}

/// Implements tasks `t{from}..t{to}`.
async fn add_backlog(app: &TestApp, b: &mut EventBuilder, from: usize, to: usize) {
    let at = Utc::now() - Duration::hours(3);
    let mut events = Vec::new();
    for i in from..to {
        let id = format!("t{i}");
        events.push(b.task_created(&id, at, json!({})));
        events.push(b.transition(&id, "implemented", at));
    }
    app.ingest(&events).await;
}

const BACKLOG_RULE: &str =
    "[[rule]]\nmetric_key = \"ini_backlog\"\ndirection = \"above\"\nwarning = 2\ncritical = 5\n";

#[tokio::test]
async fn a_firing_alert_reaches_alertmanager_with_its_labels_is_silenced_by_an_ack_and_resolves() {
    let app = TestApp::spawn().await;
    let am = Alertmanager::start().await;
    let rules = rule_file("am", BACKLOG_RULE);
    // A long resend: the firing alert's endsAt lies 40 s ahead, so its disappearance below
    // is the resolution, not an expiry.
    let _worker = WorkerProcess::spawn(
        &app.db.url,
        &[
            ("FLOWMETER_ALERTMANAGER_URLS", am.url.as_str()),
            ("FLOWMETER_ALERTMANAGER_RESEND_SECONDS", "10"),
            ("FLOWMETER_PUBLIC_URL", "http://flowmeter.test:8080/"),
            ("FLOWMETER_ALERT_RULES", rules.as_str()),
        ],
    );
    let mut b = backlog_project(&app, "Checkout team", 3).await;
    let project = b.project_id;
    let fired = eventually!(
        "the alert in Alertmanager",
        StdDuration::from_secs(30),
        alerts_in(&am, project).await.into_iter().next()
    );
    let (alert_id, _) = alerts_of(&app, project).await[0].clone();
    let dashboard = format!("http://flowmeter.test:8080/#/projects/{project}/alerts/{alert_id}");
    assert_eq!(
        fired["labels"],
        json!({
            "alertname": "FlowmeterIniBacklog",
            "project_id": project,
            "project": "Checkout team",
            "severity": "warning",
            "metric_key": "ini_backlog",
            "alert_type": "threshold",
            "source": "flowmeter",
        }),
        "{fired:#}"
    );
    let annotations = &fired["annotations"];
    assert_eq!(annotations["value"], "3");
    assert_eq!(annotations["threshold"], "2");
    assert_eq!(annotations["dashboard_url"], json!(dashboard));
    assert_eq!(
        annotations["runbook_url"],
        "docs/RUNBOOK.md#flowmeterintegrationbackloghigh"
    );
    let summary = annotations["summary"].as_str().unwrap();
    assert!(
        summary.contains("ini_backlog") && summary.contains("Checkout team"),
        "{summary}"
    );
    let description = annotations["description"].as_str().unwrap();
    assert!(
        description.contains(&alert_id.to_string()) && description.contains("is 3"),
        "{description}"
    );
    assert_eq!(fired["generatorURL"], json!(dashboard));
    assert_eq!(fired["status"]["state"], "active");
    let ends_at = DateTime::parse_from_rfc3339(fired["endsAt"].as_str().unwrap()).unwrap();
    assert!(ends_at > Utc::now() + Duration::seconds(25), "{ends_at}");

    // Acknowledge with an expiry: a silence for the rule in the project, until the expiry.
    let response = app
        .http
        .post(app.url(&format!(
            "/v1/metrics/alerts/{alert_id}/acknowledge?project_id={project}"
        )))
        .json(&json!({"reason": "release train tomorrow", "expires_in_minutes": 90}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let acked: Value = response.json().await.unwrap();
    let expires = DateTime::parse_from_rfc3339(acked["ack_expires_at"].as_str().unwrap()).unwrap();
    let silence = eventually!(
        "the silence",
        StdDuration::from_secs(20),
        am.silences().await.into_iter().next()
    );
    assert_eq!(silence["status"]["state"], "active");
    assert_eq!(silence["createdBy"], acked["acknowledged_by"]);
    assert_eq!(silence["comment"], "release train tomorrow");
    let silence_end = DateTime::parse_from_rfc3339(silence["endsAt"].as_str().unwrap()).unwrap();
    assert_eq!(silence_end, expires, "{silence:#}");
    let mut matchers: Vec<(String, String, bool, bool)> = silence["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["value"].as_str().unwrap().to_owned(),
                m["isRegex"].as_bool().unwrap(),
                m["isEqual"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    matchers.sort();
    assert_eq!(
        matchers,
        vec![
            (
                "alertname".into(),
                "FlowmeterIniBacklog".into(),
                false,
                true
            ),
            ("project_id".into(), project.to_string(), false, true),
        ]
    );
    let silence_id = silence["id"].as_str().unwrap().to_owned();
    let client = app.db.client().await;
    let stored: Vec<(String, String)> = client
        .query(
            "SELECT alertmanager, silence_id FROM metrics_alertmanager_silence
              WHERE project_id = $1 AND alert_id = $2",
            &[&project, &alert_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(stored, vec![(am.url.clone(), silence_id.clone())]);
    let silenced = eventually!(
        "the alert shown as silenced",
        StdDuration::from_secs(20),
        alerts_in(&am, project)
            .await
            .into_iter()
            .find(|a| a["status"]["state"] == "suppressed")
    );
    assert_eq!(silenced["status"]["silencedBy"], json!([silence_id]));
    // Acknowledging again is idempotent: no second silence.
    app.http
        .post(app.url(&format!(
            "/v1/metrics/alerts/{alert_id}/acknowledge?project_id={project}"
        )))
        .json(&json!({"expires_in_minutes": 90}))
        .send()
        .await
        .unwrap();

    // Integrate two: backlog 1, resolved; Alertmanager no longer lists it as active.
    app.ingest(&[
        b.transition("t0", "integrated", Utc::now() - Duration::minutes(5)),
        b.transition("t1", "integrated", Utc::now() - Duration::minutes(5)),
    ])
    .await;
    let started = Instant::now();
    eventually!(
        "the resolution in Alertmanager",
        StdDuration::from_secs(20),
        alerts_in(&am, project).await.is_empty().then_some(())
    );
    assert!(
        started.elapsed() < StdDuration::from_secs(25),
        "resolved, not expired"
    );
    assert_eq!(alerts_of(&app, project).await[0].1 .3, "resolved");
    assert_eq!(
        am.silences().await.len(),
        1,
        "one silence per acknowledgement"
    );

    let rows: Vec<(String, i32, bool)> =
        eventually!("every row delivered", StdDuration::from_secs(10), {
            let rows: Vec<(String, i32, bool)> = client
                .query(
                    "SELECT kind, attempts, delivered_at IS NOT NULL
                       FROM metrics_alertmanager_outbox WHERE project_id = $1 ORDER BY id",
                    &[&project],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            rows.iter().all(|r| r.2).then_some(rows)
        });
    assert_eq!(
        rows,
        vec![("firing".into(), 1, true), ("resolved".into(), 1, true)]
    );
}

/// (kind, attempts, delivered) of a project's outbox rows for one Alertmanager, in order.
async fn outbox(app: &TestApp, alertmanager: &str, project: Uuid) -> Vec<(String, i32, bool)> {
    app.db
        .client()
        .await
        .query(
            "SELECT kind, attempts, delivered_at IS NOT NULL FROM metrics_alertmanager_outbox
              WHERE alertmanager = $1 AND project_id = $2 ORDER BY id",
            &[&alertmanager, &project],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// (labels.severity) of a project's active alerts in an Alertmanager, sorted.
async fn severities(am: &Alertmanager, project: Uuid) -> Vec<String> {
    let mut found: Vec<String> = alerts_in(am, project)
        .await
        .iter()
        .map(|a| a["labels"]["severity"].as_str().unwrap().to_owned())
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn an_alertmanager_that_was_down_receives_every_alert_and_both_alertmanagers_do() {
    let app = TestApp::spawn().await;
    let mut down = Alertmanager::start().await;
    let up = Alertmanager::start().await;
    let rules = rule_file("am-down", BACKLOG_RULE);
    let urls = format!("{},{}", down.url, up.url);
    let worker = WorkerProcess::spawn(
        &app.db.url,
        &[
            ("FLOWMETER_ALERTMANAGER_URLS", urls.as_str()),
            ("FLOWMETER_ALERTMANAGER_RESEND_SECONDS", "2"),
            ("FLOWMETER_ALERT_RULES", rules.as_str()),
        ],
    );
    let mut first = backlog_project(&app, "Payments", 3).await;
    let p1 = first.project_id;
    for am in [&down, &up] {
        eventually!(
            "the first alert in both Alertmanagers",
            StdDuration::from_secs(30),
            (severities(am, p1).await == ["warning"]).then_some(())
        );
    }

    // Down while alerts fire: the first project escalates (backlog 6 > 5), a second fires.
    down.stop();
    add_backlog(&app, &mut first, 3, 6).await;
    let second = backlog_project(&app, "Search", 4).await;
    let p2 = second.project_id;
    eventually!(
        "both changes in the Alertmanager that is up",
        StdDuration::from_secs(30),
        (severities(&up, p1).await == ["critical"] && severities(&up, p2).await == ["warning"])
            .then_some(())
    );
    let queued = eventually!(
        "failed posts queued for the Alertmanager that is down",
        StdDuration::from_secs(20),
        {
            let text = worker.metrics().await;
            let errors = metric_value(
                &text,
                "flowmeter_alertmanager_posts_total{result=\"error\"}",
            )
            .unwrap_or(0.0);
            let depth = metric_value(&text, "flowmeter_alertmanager_queue_depth").unwrap_or(0.0);
            (errors >= 2.0 && depth >= 2.0).then_some(depth)
        }
    );
    assert_eq!(queued, 2.0, "the escalation and the second firing wait");

    // Started again (empty: Alertmanager keeps alerts in memory only), it gets everything.
    down.resume().await;
    for am in [&down, &up] {
        eventually!(
            "every alert in both Alertmanagers",
            StdDuration::from_secs(30),
            (severities(am, p1).await == ["critical"] && severities(am, p2).await == ["warning"])
                .then_some(())
        );
    }
    let text = eventually!("an empty queue", StdDuration::from_secs(10), {
        let text = worker.metrics().await;
        (metric_value(&text, "flowmeter_alertmanager_queue_depth") == Some(0.0)).then_some(text)
    });
    let errors = metric_value(
        &text,
        "flowmeter_alertmanager_posts_total{result=\"error\"}",
    )
    .unwrap();
    let successes = metric_value(
        &text,
        "flowmeter_alertmanager_posts_total{result=\"success\"}",
    )
    .unwrap();
    assert!(errors >= 2.0 && successes >= 4.0, "{text}");

    // The outbox: one row per transition and Alertmanager, each delivered; the rows written
    // while one was down took retries there and one post at the other.
    let transitions = |project| {
        let app = &app;
        async move {
            app.db
                .client()
                .await
                .query(
                    "SELECT kind FROM metrics_alert_event WHERE project_id = $1 ORDER BY event_no",
                    &[&project],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(transitions(p1).await, ["firing", "escalated"]);
    assert_eq!(transitions(p2).await, ["firing"]);
    let at_up = outbox(&app, &up.url, p1).await;
    assert_eq!(
        at_up,
        vec![("firing".into(), 1, true), ("escalated".into(), 1, true)]
    );
    assert_eq!(
        outbox(&app, &up.url, p2).await,
        vec![("firing".into(), 1, true)]
    );
    let at_down = outbox(&app, &down.url, p1).await;
    assert_eq!(at_down.len(), 2, "{at_down:?}");
    assert_eq!(at_down[0], ("firing".into(), 1, true));
    assert!(
        at_down[1].0 == "escalated" && at_down[1].1 >= 2 && at_down[1].2,
        "{at_down:?}"
    );
    let second_down = outbox(&app, &down.url, p2).await;
    assert!(
        second_down.len() == 1 && second_down[0].1 >= 2 && second_down[0].2,
        "{second_down:?}"
    );
}

#[test]
fn amtool_accepts_the_example_alertmanager_configuration() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("alerts/alertmanager.example.yml");
    let output = Command::new("amtool")
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("amtool is missing: scripts/install-deps (run by `make test`) installs it");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("SUCCESS") && text.contains("2 receivers"),
        "{text}"
    );
    let config = std::fs::read_to_string(&path).unwrap();
    for needle in [
        "slack_configs",
        "webhook_configs",
        "severity =~ \"emergency|critical\"",
    ] {
        assert!(
            config.contains(needle),
            "the example routes by severity: {needle}"
        );
    }
}
