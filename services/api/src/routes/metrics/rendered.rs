//! Rendered bodies of the metrics responses built from a snapshot (health, actions, trends,
//! breakdown, drill-down), kept per process by response identity and snapshot row version: a
//! repeated request for the same snapshot and log head is answered without rebuilding its
//! body, while any new snapshot, log head or rewritten snapshot row (`xmin`) makes a new key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::{etag, validated_response, MetricsRequest};
use crate::error::ApiError;
use crate::startup::AppState;

/// Bodies kept at most; the map is emptied when full (a new snapshot makes earlier keys
/// unreachable anyway).
const MAX_BODIES: usize = 512;

/// The kept bodies by key.
#[derive(Debug, Default)]
pub struct RenderedCache {
    bodies: Mutex<HashMap<String, Arc<[u8]>>>,
}

impl RenderedCache {
    fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        self.bodies.lock().ok()?.get(key).cloned()
    }

    fn put(&self, key: String, body: Arc<[u8]>) {
        if let Ok(mut bodies) = self.bodies.lock() {
            if bodies.len() >= MAX_BODIES {
                bodies.clear();
            }
            bodies.insert(key, body);
        }
    }
}

/// The cache key of a response: its identity and the snapshot row's version; `None` without a
/// snapshot (such bodies depend on the clock).
fn key(request: &MetricsRequest, identity: &str) -> Option<String> {
    request
        .snapshot
        .as_ref()
        .map(|s| format!("{identity}|{}", s.row_version))
}

/// The answer without building the body: 304 when the client holds this version, else the
/// kept body; `None` when the body must be built.
pub fn kept(
    req: &HttpRequest,
    state: &AppState,
    request: &MetricsRequest,
    identity: &str,
) -> Option<HttpResponse> {
    let (mut response, not_modified) = validated_response(req, state, &etag(identity));
    if not_modified {
        return Some(response.finish());
    }
    let body = state.rendered.get(&key(request, identity)?)?;
    Some(
        response
            .content_type("application/json")
            .body(body.to_vec()),
    )
}

/// The JSON response of a freshly built body with its validators, keeping the body.
pub fn keep_json(
    req: &HttpRequest,
    state: &AppState,
    request: &MetricsRequest,
    identity: &str,
    body: &impl Serialize,
) -> Result<HttpResponse, ApiError> {
    let text: Arc<[u8]> = serde_json::to_vec(body)
        .map_err(anyhow::Error::from)?
        .into();
    if let Some(key) = key(request, identity) {
        state.rendered.put(key, text.clone());
    }
    let (mut response, _) = validated_response(req, state, &etag(identity));
    Ok(response
        .content_type("application/json")
        .body(text.to_vec()))
}
