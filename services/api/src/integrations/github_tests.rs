use serde_json::json;

use super::*;

fn project() -> Uuid {
    Uuid::nil()
}

#[test]
fn an_incident_issue_names_its_deployment_on_a_caused_by_line() {
    let body = json!({
        "action": "opened",
        "repository": {"full_name": "acme/shop", "name": "shop"},
        "issue": {"number": 7, "created_at": "2026-03-11T10:00:00Z",
                  "body": "Checkout is down.\ncaused-by-deployment: 42\n",
                  "labels": [{"name": "Incident"}]}
    });
    let Mapped::Events(events) = map_delivery(project(), "issues", "d-1", &body).unwrap() else {
        panic!("not mapped");
    };
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_id"], "github:d-1:0");
    assert_eq!(events[0]["entity_id"], "acme/shop/issues/7");
    assert_eq!(
        events[0]["payload"]["caused_by_deployment_id"],
        "acme/shop/deployments/42"
    );
}

#[test]
fn unmapped_kinds_and_actions_are_ignored_and_missing_fields_named() {
    let body = json!({"action": "edited", "repository": {"full_name": "acme/shop"},
                      "pull_request": {"number": 1}});
    assert!(matches!(
        map_delivery(project(), "star", "d", &body),
        Ok(Mapped::Ignored(_))
    ));
    assert!(matches!(
        map_delivery(project(), "pull_request", "d", &body),
        Ok(Mapped::Ignored(_))
    ));
    let opened = json!({"action": "opened", "repository": {"full_name": "acme/shop"},
                        "pull_request": {"number": 1, "title": "x"}});
    assert_eq!(
        map_delivery(project(), "pull_request", "d", &opened),
        Err(MissingField {
            field: "pull_request.created_at".into()
        })
    );
}
