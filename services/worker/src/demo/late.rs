//! Late delivery of a demo stream (`demo-data --late-percent P`): the whole histories of P %
//! of the tasks (their task events and the gate and attempt events naming them) are taken
//! out and delivered 1–10 days after they began, right after the first event of the stream
//! that is that much later. The events and their times are unchanged; only the order in
//! which they are appended (and so their seq) is, as when producers retry or backfill late.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use super::rng::mix64;

fn occurred(event: &Value) -> Option<DateTime<Utc>> {
    event["occurred_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The task an event belongs to: its entity for task events, `payload.task_id` for gates
/// and attempts.
fn task_of(event: &Value) -> Option<&str> {
    match event["entity_type"].as_str()? {
        "task" => event["entity_id"].as_str(),
        "gate" | "integration_attempt" => event["payload"]["task_id"].as_str(),
        _ => None,
    }
}

/// Reorders `events` (sorted by time) so that `percent` % of the task histories arrive late.
pub fn delay_histories(events: Vec<Value>, percent: u32, seed: u64) -> Vec<Value> {
    if percent == 0 {
        return events;
    }
    let hash = |task: &str| {
        task.bytes()
            .fold(mix64(seed ^ 0x1A7E), |h, b| mix64(h ^ u64::from(b)))
    };
    let late: HashSet<String> = events
        .iter()
        .filter(|e| e["event_type"] == "task_created")
        .filter_map(|e| e["entity_id"].as_str())
        .filter(|task| hash(task) % 100 < u64::from(percent))
        .map(str::to_owned)
        .collect();
    let mut on_time = Vec::with_capacity(events.len());
    let mut held: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for event in events {
        match task_of(&event).filter(|t| late.contains(*t)) {
            Some(task) => held.entry(task.to_owned()).or_default().push(event),
            None => on_time.push(event),
        }
    }
    // Each held history joins the stream after the first event at or past its delivery time.
    let mut deliveries: BTreeMap<DateTime<Utc>, Vec<Value>> = BTreeMap::new();
    for (task, history) in held {
        let Some(began) = history.first().and_then(occurred) else {
            continue;
        };
        let days = 1 + (hash(&task) / 100) % 10;
        let due = began + TimeDelta::days(days as i64);
        deliveries.entry(due).or_default().extend(history);
    }
    let mut out =
        Vec::with_capacity(on_time.len() + deliveries.values().map(Vec::len).sum::<usize>());
    for event in on_time {
        let at = occurred(&event);
        out.push(event);
        while let Some(entry) = deliveries.first_entry() {
            if at.is_some_and(|at| at >= *entry.key()) {
                out.extend(entry.remove());
            } else {
                break;
            }
        }
    }
    out.extend(deliveries.into_values().flatten());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(entity_type: &str, id: &str, kind: &str, hour: i64, task: &str) -> Value {
        let at =
            DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap() + TimeDelta::hours(hour);
        json!({"entity_type": entity_type, "entity_id": id, "event_type": kind,
               "occurred_at": at.to_rfc3339(), "payload": {"task_id": task}})
    }

    #[test]
    fn late_histories_move_after_later_events_whole_and_nothing_is_lost() {
        let mut events = Vec::new();
        for i in 0..40 {
            let task = format!("t{i}");
            events.push(event("task", &task, "task_created", i * 5, ""));
            events.push(event(
                "gate",
                &format!("g{i}"),
                "gate_requested",
                i * 5 + 1,
                &task,
            ));
            events.push(event(
                "task",
                &task,
                "task_state_transitioned",
                i * 5 + 2,
                "",
            ));
        }
        let reordered = delay_histories(events.clone(), 25, 7);
        assert_eq!(reordered.len(), events.len());
        let times: Vec<_> = reordered.iter().map(|e| occurred(e).unwrap()).collect();
        let moved = times.windows(2).filter(|w| w[1] < w[0]).count();
        assert!(moved > 3, "some histories arrive late: {moved}");
        // Each task's own events keep their order.
        for i in 0..40 {
            let task = format!("t{i}");
            let own: Vec<_> = reordered
                .iter()
                .filter(|e| task_of(e) == Some(task.as_str()))
                .map(|e| occurred(e).unwrap())
                .collect();
            assert!(own.windows(2).all(|w| w[0] <= w[1]), "{task}");
        }
        assert_eq!(delay_histories(events.clone(), 0, 7), events);
    }
}
