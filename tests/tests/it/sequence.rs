//! The per-project sequence is gapless and commit-ordered for any writer, including
//! producers that insert with plain SQL.

use flowmeter_tests::TestDb;
use uuid::Uuid;

const INSERT: &str = "INSERT INTO event_log (project_id, event_id, entity_type, entity_id, event_type, payload, occurred_at)
     SELECT $1, $2 || '-' || g, 'task', 't' || g, 'task_created', '{\"title\": \"x\"}'::jsonb, now()
       FROM generate_series(1, $3::int) AS g";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_with_rollbacks_leave_seq_exactly_one_to_n() {
    let db = TestDb::migrated().await;
    let project = Uuid::new_v4();
    const WRITERS: usize = 8;
    const EVENTS_PER_WRITER: usize = 1000;
    const PER_TX: usize = 25;

    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let url = db.url.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = flowmeter_tests::db::connect(&url).await;
            let mut committed = 0usize;
            for (batch, start) in (0..EVENTS_PER_WRITER).step_by(PER_TX).enumerate() {
                let mut tx = client.transaction().await.unwrap();
                let prefix = format!("w{writer}-b{batch}-s{start}");
                // Half the batches roll back; of those that commit, some also roll back a
                // savepoint in the middle, which must not leave a hole either.
                let n = PER_TX as i32;
                tx.execute(INSERT, &[&project, &prefix, &n]).await.unwrap();
                if batch % 4 == 1 {
                    let sp = tx.savepoint("sp").await.unwrap();
                    sp.execute(INSERT, &[&project, &format!("{prefix}-sp"), &3i32])
                        .await
                        .unwrap();
                    sp.rollback().await.unwrap();
                    tx.execute(INSERT, &[&project, &format!("{prefix}-after"), &2i32])
                        .await
                        .unwrap();
                }
                if batch % 2 == 0 {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                    committed += PER_TX + if batch % 4 == 1 { 2 } else { 0 };
                }
            }
            committed
        }));
    }
    let mut committed = 0;
    for task in tasks {
        committed += task.await.unwrap();
    }

    let client = db.client().await;
    let seqs: Vec<i64> = client
        .query(
            "SELECT seq FROM event_log WHERE project_id = $1 ORDER BY seq",
            &[&project],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(seqs.len(), committed);
    assert!(
        committed > 3000,
        "most writers' batches committed: {committed}"
    );
    let expected: Vec<i64> = (1..=committed as i64).collect();
    assert_eq!(seqs, expected, "seq must be exactly 1..N");
    let head: i64 = client
        .query_one(
            "SELECT last_seq FROM event_stream_head WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(head, committed as i64);
}

#[tokio::test]
async fn a_duplicate_event_id_consumes_no_seq() {
    let db = TestDb::migrated().await;
    let project = Uuid::new_v4();
    let client = db.client().await;
    client
        .execute(INSERT, &[&project, &"a", &3i32])
        .await
        .unwrap();
    // Same ids again plus two new ones in one statement.
    let inserted = client
        .execute(
            &format!("{INSERT} ON CONFLICT DO NOTHING"),
            &[&project, &"a", &5i32],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 2);
    let rows = client
        .query(
            "SELECT seq, event_id FROM event_log WHERE project_id = $1 ORDER BY seq",
            &[&project],
        )
        .await
        .unwrap();
    let got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![
            (1, "a-1".into()),
            (2, "a-2".into()),
            (3, "a-3".into()),
            (4, "a-4".into()),
            (5, "a-5".into())
        ]
    );
}

#[tokio::test]
async fn the_event_log_rejects_update_delete_and_truncate() {
    let db = TestDb::migrated().await;
    let project = Uuid::new_v4();
    let client = db.client().await;
    client
        .execute(INSERT, &[&project, &"a", &1i32])
        .await
        .unwrap();
    for sql in [
        "UPDATE event_log SET entity_id = 'x'",
        "DELETE FROM event_log",
        "TRUNCATE event_log",
    ] {
        let err = client.batch_execute(sql).await.unwrap_err();
        assert!(
            err.as_db_error().unwrap().message().contains("append-only"),
            "{sql}: {err}"
        );
    }
    let count: i64 = client
        .query_one("SELECT count(*) FROM event_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}

#[tokio::test]
async fn plain_sql_inserts_create_the_project() {
    let db = TestDb::migrated().await;
    let project = Uuid::new_v4();
    let client = db.client().await;
    client
        .execute(INSERT, &[&project, &"a", &2i32])
        .await
        .unwrap();
    let name: String = client
        .query_one("SELECT name FROM project WHERE id = $1", &[&project])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, project.to_string());
}
