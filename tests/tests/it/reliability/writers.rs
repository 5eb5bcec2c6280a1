//! No skip, no double count: eight writers append to three projects, half of them with
//! plain SQL transactions of which a third roll back (some only a savepoint), while two
//! worker processes fold. Afterwards every counter equals the committed events and
//! `verify` passes for every project.

use flowmeter_tests::worker::{assert_verified, wait_until_caught_up, WorkerProcess};
use flowmeter_tests::TestApp;

use super::*;

const INSERT: &str = "INSERT INTO event_log
       (project_id, event_id, entity_type, entity_id, event_type, payload, occurred_at)
     VALUES ($1, $2, 'task', $3, $4, $5, now() - interval '1 hour')";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_with_rollbacks_and_two_workers_count_every_committed_event_once() {
    let app = TestApp::spawn().await;
    let url = app.db.url.clone();
    let _w1 = WorkerProcess::spawn(&url, &[("FLOWMETER_NRT_MAX_EVENTS", "37")]);
    let _w2 = WorkerProcess::spawn(&url, &[("FLOWMETER_NRT_MAX_EVENTS", "53")]);
    let projects: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();

    let mut writers = Vec::new();
    for writer in 0..8usize {
        let projects = projects.clone();
        let base_url = app.base_url.clone();
        let url = url.clone();
        writers.push(tokio::spawn(async move {
            // (project, tasks created, transitions) committed by this writer.
            let mut committed: Vec<(Uuid, i64, i64)> = Vec::new();
            if writer < 4 {
                let http = reqwest::Client::new();
                for round in 0..12 {
                    let project = projects[(writer + round) % 3];
                    let mut batch = task_events(project, &format!("h{writer}r{round}"), 5);
                    // Every fourth batch carries one bad event: refused whole, nothing stored.
                    let refused = round % 4 == 3;
                    if refused {
                        batch[3]["occurred_at"] = json!("yesterday");
                    }
                    let status = http
                        .post(format!("{base_url}/v1/events"))
                        .json(&batch)
                        .send()
                        .await
                        .unwrap()
                        .status();
                    if refused {
                        assert_eq!(status, 422);
                    } else {
                        assert_eq!(status, 200);
                        committed.push((project, 5, 5));
                    }
                }
            } else {
                let mut client = flowmeter_tests::db::connect(&url).await;
                for round in 0..30 {
                    let project = projects[(writer + round) % 3];
                    let tx = client.transaction().await.unwrap();
                    let tag = format!("s{writer}r{round}");
                    let task = |k: usize| format!("{tag}-t{k}");
                    for k in 0..3 {
                        tx.execute(
                            INSERT,
                            &[
                                &project,
                                &format!("{tag}-c{k}"),
                                &task(k),
                                &"task_created",
                                &json!({"title": "sql"}),
                            ],
                        )
                        .await
                        .unwrap();
                    }
                    // A savepoint rolled back in the middle leaves no trace.
                    let mut transitions = 0;
                    {
                        let mut tx = tx;
                        let sp = tx.savepoint("sp").await.unwrap();
                        sp.execute(
                            INSERT,
                            &[
                                &project,
                                &format!("{tag}-gone"),
                                &task(0),
                                &"task_state_transitioned",
                                &json!({"to_state": "cancelled"}),
                            ],
                        )
                        .await
                        .unwrap();
                        sp.rollback().await.unwrap();
                        for k in 0..2 {
                            tx.execute(
                                INSERT,
                                &[
                                    &project,
                                    &format!("{tag}-m{k}"),
                                    &task(k),
                                    &"task_state_transitioned",
                                    &json!({"to_state": "claimed"}),
                                ],
                            )
                            .await
                            .unwrap();
                            transitions += 1;
                        }
                        if round % 3 == 0 {
                            tx.rollback().await.unwrap();
                        } else {
                            tx.commit().await.unwrap();
                            committed.push((project, 3, transitions));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            committed
        }));
    }
    let mut expected: std::collections::HashMap<Uuid, (i64, i64)> = Default::default();
    for writer in writers {
        for (project, created, transitions) in writer.await.unwrap() {
            let entry = expected.entry(project).or_default();
            entry.0 += created;
            entry.1 += transitions;
        }
    }

    let client = app.db.client().await;
    wait_until_caught_up(&client, &projects, Duration::from_secs(90)).await;
    for project in &projects {
        let (created, transitions) = expected[project];
        let logged: i64 = client
            .query_one(
                "SELECT count(*) FROM event_log WHERE project_id = $1",
                &[project],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            logged,
            created + transitions,
            "the log holds exactly the committed events"
        );
        let counted: i64 = client
            .query_one(
                "SELECT COALESCE(sum(transition_count), 0)::bigint
                   FROM metrics_state_transition_counter WHERE project_id = $1",
                &[project],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(counted, transitions, "one count per committed transition");
        let arrivals: f64 = client
            .query_one(
                "SELECT COALESCE(sum(value_numeric), 0) FROM metrics_trend_point
                  WHERE project_id = $1 AND metric_key = 'arrivals' AND time_grain = 'day'
                    AND dimensions = '{}'",
                &[project],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            arrivals, created as f64,
            "one arrival per committed task_created"
        );
        let tasks: i64 = client
            .query_one(
                "SELECT count(*) FROM metrics_task WHERE project_id = $1",
                &[project],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(tasks, created);
        assert_verified(&url, *project);
    }
}
