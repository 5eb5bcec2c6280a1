//! GitHub webhook deliveries → Flowmeter events (SPEC §19, docs/GITHUB.md). A pure mapping
//! from the delivery's kind (`X-GitHub-Event`), its id (`X-GitHub-Delivery`) and its JSON
//! body to catalogue events; the route validates and stores them like `POST /v1/events`.
//!
//! Event ids are `github:<delivery id>:<n>`, so a redelivery (GitHub keeps the delivery id)
//! yields the same events, which ingest skips as duplicates. Entity ids name the repository,
//! so one organisation webhook can feed a project from many repositories.

use serde_json::{json, Value};
use uuid::Uuid;

/// What a delivery becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// Events to store (at least one).
    Events(Vec<Value>),
    /// Nothing to store; why.
    Ignored(String),
}

/// A field the mapping needs is missing or of the wrong type: `field` is its JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingField {
    /// The path in the delivery's body, e.g. `pull_request.number`.
    pub field: String,
}

type Mapping = Result<Mapped, MissingField>;

/// The label that marks an issue as an incident (compared case-insensitively).
pub const INCIDENT_LABEL: &str = "incident";

/// Reads typed fields of a delivery body by dotted path.
struct Body<'a>(&'a Value);

impl Body<'_> {
    fn at(&self, path: &str) -> Option<&Value> {
        path.split('.')
            .try_fold(self.0, |node, key| node.get(key))
            .filter(|v| !v.is_null())
    }

    fn text(&self, path: &str) -> Result<String, MissingField> {
        match self.at(path) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(MissingField {
                field: path.to_owned(),
            }),
        }
    }

    fn optional(&self, path: &str) -> Option<String> {
        self.text(path).ok()
    }
}

/// Builds the events of one delivery with sequential event ids.
struct Out {
    project: Uuid,
    delivery: String,
    events: Vec<Value>,
}

impl Out {
    fn push(&mut self, entity: (&str, &str), event_type: &str, at: String, payload: Value) {
        let event_id = format!("github:{}:{}", self.delivery, self.events.len());
        self.events.push(json!({
            "project_id": self.project,
            "event_id": event_id,
            "entity_type": entity.0,
            "entity_id": entity.1,
            "event_type": event_type,
            "occurred_at": at,
            "payload": payload,
        }));
    }

    fn done(self) -> Mapping {
        Ok(Mapped::Events(self.events))
    }
}

fn ignored(why: impl Into<String>) -> Mapping {
    Ok(Mapped::Ignored(why.into()))
}

/// Maps one delivery.
pub fn map_delivery(project: Uuid, kind: &str, delivery: &str, body: &Value) -> Mapping {
    let b = Body(body);
    let out = Out {
        project,
        delivery: delivery.to_owned(),
        events: Vec::new(),
    };
    match kind {
        "pull_request" => pull_request(&b, out),
        "pull_request_review" => pull_request_review(&b, out),
        "push" => push(&b, out),
        "deployment" => deployment(&b, out),
        "deployment_status" => deployment_status(&b, out),
        "workflow_run" => workflow_run(&b, out),
        "issues" => issues(&b, out),
        other => ignored(format!("{other} deliveries are not mapped")),
    }
}

fn repo(b: &Body<'_>) -> Result<String, MissingField> {
    b.text("repository.full_name")
}

fn pr_task(b: &Body<'_>) -> Result<String, MissingField> {
    Ok(format!("{}#{}", repo(b)?, b.text("pull_request.number")?))
}

fn transition(out: &mut Out, task: &str, to: &str, at: String) {
    out.push(
        ("task", task),
        "task_state_transitioned",
        at,
        json!({"to_state": to}),
    );
}

fn pull_request(b: &Body<'_>, mut out: Out) -> Mapping {
    let action = b.text("action")?;
    let task = pr_task(b)?;
    match action.as_str() {
        "opened" => {
            let at = b.text("pull_request.created_at")?;
            out.push(
                ("task", &task),
                "task_created",
                at.clone(),
                json!({"title": b.text("pull_request.title")?, "state": "in_progress",
                       "assignee": b.optional("pull_request.user.login"),
                       "task_class": "pull_request"}),
            );
            // Opened for review at once (not a draft): implemented at the same instant.
            if b.at("pull_request.draft") != Some(&Value::Bool(true)) {
                transition(&mut out, &task, "implemented", at);
            }
        }
        "reopened" => transition(
            &mut out,
            &task,
            "in_progress",
            b.text("pull_request.updated_at")?,
        ),
        "ready_for_review" => transition(
            &mut out,
            &task,
            "implemented",
            b.text("pull_request.updated_at")?,
        ),
        "closed" if b.at("pull_request.merged") == Some(&Value::Bool(true)) => transition(
            &mut out,
            &task,
            "integrated",
            b.text("pull_request.merged_at")?,
        ),
        "closed" => transition(
            &mut out,
            &task,
            "abandoned",
            b.text("pull_request.closed_at")?,
        ),
        "review_requested" => {
            let reviewer = b
                .text("requested_reviewer.login")
                .or_else(|_| b.text("requested_team.slug"))?;
            out.push(
                ("gate", &format!("{task}/review/{reviewer}")),
                "gate_requested",
                b.text("pull_request.updated_at")?,
                json!({"task_id": task, "gate_type": "review_gate", "reviewer": reviewer}),
            );
        }
        other => return ignored(format!("pull_request action {other} is not mapped")),
    }
    out.done()
}

fn pull_request_review(b: &Body<'_>, mut out: Out) -> Mapping {
    let action = b.text("action")?;
    if action != "submitted" {
        return ignored(format!("pull_request_review action {action} is not mapped"));
    }
    let outcome = match b.text("review.state")?.to_ascii_lowercase().as_str() {
        "approved" => "approved",
        "changes_requested" => "rejected",
        other => return ignored(format!("a review in state {other} decides nothing")),
    };
    let task = pr_task(b)?;
    let reviewer = b.text("review.user.login")?;
    out.push(
        ("gate", &format!("{task}/review/{reviewer}")),
        "gate_decision_recorded",
        b.text("review.submitted_at")?,
        json!({"task_id": task, "outcome": outcome, "actor_id": reviewer,
               "gate_type": "review_gate"}),
    );
    out.done()
}

fn push(b: &Body<'_>, mut out: Out) -> Mapping {
    let service = b.text("repository.name")?;
    let commits = b
        .at("commits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, commit) in commits.iter().enumerate() {
        let c = Body(commit);
        let field = |name: &str| MissingField {
            field: format!("commits[{i}].{name}"),
        };
        let sha = c.text("id").map_err(|_| field("id"))?;
        let at = c.text("timestamp").map_err(|_| field("timestamp"))?;
        let author = c
            .optional("author.username")
            .or_else(|| c.optional("author.name"));
        out.push(
            ("change", &sha),
            "change_committed",
            at,
            json!({"author": author, "service": service}),
        );
    }
    if out.events.is_empty() {
        return ignored("a push without commits");
    }
    out.done()
}

fn deployment_id(b: &Body<'_>) -> Result<String, MissingField> {
    Ok(format!(
        "{}/deployments/{}",
        repo(b)?,
        b.text("deployment.id")?
    ))
}

fn deployment(b: &Body<'_>, mut out: Out) -> Mapping {
    let action = b.text("action")?;
    if action != "created" {
        return ignored(format!("deployment action {action} is not mapped"));
    }
    out.push(
        ("deployment", &deployment_id(b)?),
        "deployment_started",
        b.text("deployment.created_at")?,
        json!({"environment": b.text("deployment.environment")?,
               "service": b.text("repository.name")?,
               "version": b.optional("deployment.ref"),
               "change_ids": [b.text("deployment.sha")?]}),
    );
    out.done()
}

fn deployment_status(b: &Body<'_>, mut out: Out) -> Mapping {
    let state = b.text("deployment_status.state")?;
    let status = match state.as_str() {
        "success" => "success",
        "failure" | "error" => "failure",
        other => {
            return ignored(format!(
                "deployment status {other} does not finish a deployment"
            ))
        }
    };
    let environment = b
        .text("deployment_status.environment")
        .or_else(|_| b.text("deployment.environment"))?;
    out.push(
        ("deployment", &deployment_id(b)?),
        "deployment_finished",
        b.text("deployment_status.created_at")?,
        json!({"environment": environment, "status": status,
               "service": b.text("repository.name")?,
               "version": b.optional("deployment.ref"),
               "change_ids": [b.text("deployment.sha")?]}),
    );
    out.done()
}

fn workflow_run(b: &Body<'_>, mut out: Out) -> Mapping {
    let action = b.text("action")?;
    if action != "completed" {
        return ignored(format!("workflow_run action {action} is not mapped"));
    }
    let result = match b.text("workflow_run.conclusion")?.as_str() {
        "success" => "success",
        "failure" | "timed_out" | "startup_failure" => "failed_checks",
        "cancelled" => "aborted",
        other => return ignored(format!("a workflow run concluding {other} is no attempt")),
    };
    let Some(pr) = b
        .at("workflow_run.pull_requests")
        .and_then(Value::as_array)
        .and_then(|prs| prs.first())
    else {
        return ignored("a workflow run without a pull request");
    };
    let number = Body(pr).text("number").map_err(|_| MissingField {
        field: "workflow_run.pull_requests[0].number".into(),
    })?;
    let task = format!("{}#{number}", repo(b)?);
    let run_attempt = b
        .at("workflow_run.run_attempt")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let attempt = format!(
        "{}/runs/{}/{run_attempt}",
        repo(b)?,
        b.text("workflow_run.id")?
    );
    if let Some(started) = b.optional("workflow_run.run_started_at") {
        out.push(
            ("integration_attempt", &attempt),
            "integration_attempt_started",
            started,
            json!({"task_id": task, "attempt_number": run_attempt,
                   "head_sha": b.optional("workflow_run.head_sha")}),
        );
    }
    out.push(
        ("integration_attempt", &attempt),
        "integration_attempt_finished",
        b.text("workflow_run.updated_at")?,
        json!({"task_id": task, "result": result, "attempt_number": run_attempt}),
    );
    out.done()
}

/// The deployment an incident issue names in its body, on a line
/// `Caused-By-Deployment: <GitHub deployment id>` (case-insensitive).
fn named_deployment(b: &Body<'_>) -> Result<Option<String>, MissingField> {
    let Some(text) = b.optional("issue.body") else {
        return Ok(None);
    };
    let id = text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let value = value.trim();
        (key.trim().eq_ignore_ascii_case("caused-by-deployment") && !value.is_empty())
            .then(|| value.to_owned())
    });
    Ok(match id {
        Some(id) => Some(format!("{}/deployments/{id}", repo(b)?)),
        None => None,
    })
}

fn issues(b: &Body<'_>, mut out: Out) -> Mapping {
    let labelled = b
        .at("issue.labels")
        .and_then(Value::as_array)
        .is_some_and(|labels| {
            labels.iter().any(|l| {
                l.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(INCIDENT_LABEL))
            })
        });
    if !labelled {
        return ignored(format!("an issue without the {INCIDENT_LABEL} label"));
    }
    let action = b.text("action")?;
    let incident = format!("{}/issues/{}", repo(b)?, b.text("issue.number")?);
    let payload = json!({"service": b.text("repository.name")?,
                         "caused_by_deployment_id": named_deployment(b)?});
    match action.as_str() {
        // Labelled later: the incident began when the issue was opened.
        "opened" | "labeled" | "reopened" => out.push(
            ("incident", &incident),
            "incident_opened",
            b.text("issue.created_at")?,
            payload,
        ),
        "closed" => out.push(
            ("incident", &incident),
            "incident_resolved",
            b.text("issue.closed_at")?,
            payload,
        ),
        other => return ignored(format!("issues action {other} is not mapped")),
    }
    out.done()
}

#[cfg(test)]
#[path = "github_tests.rs"]
mod tests;
