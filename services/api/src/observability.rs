//! The API's Prometheus metrics (SPEC §9). One struct owns every metric of the HTTP
//! layer and registers it once; handlers and middleware only record.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of a finished request; `route` is the route template, never the raw path.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// Route template such as `/v1/events`, or `unmatched`.
    pub route: String,
    /// Status code.
    pub status: u16,
}

/// Labels of the latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route template.
    pub route: String,
}

/// Pool connection states.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// `idle`, `in_use`, `max` or `waiting` (requests waiting for a connection).
    pub state: &'static str,
}

/// Ingest outcomes.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestLabels {
    /// `accepted`, `duplicate` or `rejected`.
    pub result: &'static str,
}

/// Outcomes of GitHub webhook deliveries.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GithubDeliveryLabels {
    /// `stored` (events appended, or all of them already stored: a redelivery), `ignored`
    /// (an event kind or action that maps to nothing) or `unauthorized` (bad or missing
    /// signature).
    pub result: &'static str,
}

/// Metrics of the API process.
#[derive(Debug)]
pub struct ApiMetrics {
    /// `flowmeter_http_requests_total{method,route,status}`.
    pub requests: Family<RequestLabels, Counter>,
    /// `flowmeter_http_request_duration_seconds{route}`.
    pub duration: Family<RouteLabels, Histogram>,
    /// `flowmeter_http_requests_in_flight`.
    pub in_flight: Gauge,
    /// `flowmeter_db_pool_connections{state}`, refreshed at every scrape.
    pub pool_connections: Family<PoolLabels, Gauge>,
    /// `flowmeter_ingest_events_total{result}`.
    pub ingest_events: Family<IngestLabels, Counter>,
    /// `flowmeter_github_deliveries_total{result}`.
    pub github_deliveries: Family<GithubDeliveryLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

impl ApiMetrics {
    /// Creates the metrics and registers them under the `flowmeter` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
            pool_connections: Family::default(),
            ingest_events: Family::default(),
            github_deliveries: Family::default(),
        };
        registry.register(
            "flowmeter_http_requests",
            "HTTP requests answered, by method, route template and status",
            metrics.requests.clone(),
        );
        registry.register(
            "flowmeter_http_request_duration_seconds",
            "HTTP request latency by route template",
            metrics.duration.clone(),
        );
        registry.register(
            "flowmeter_http_requests_in_flight",
            "HTTP requests being served",
            metrics.in_flight.clone(),
        );
        registry.register(
            "flowmeter_db_pool_connections",
            "Database pool connections by state",
            metrics.pool_connections.clone(),
        );
        registry.register(
            "flowmeter_ingest_events",
            "Events received by POST /v1/events, by result",
            metrics.ingest_events.clone(),
        );
        registry.register(
            "flowmeter_github_deliveries",
            "GitHub webhook deliveries received by POST /v1/integrations/github, by result",
            metrics.github_deliveries.clone(),
        );
        for result in ["stored", "ignored", "unauthorized"] {
            metrics
                .github_deliveries
                .get_or_create(&GithubDeliveryLabels { result })
                .inc_by(0);
        }
        // Expose every outcome from the start, so rates and alerts see zeros, not gaps.
        for result in ["accepted", "duplicate", "rejected"] {
            metrics
                .ingest_events
                .get_or_create(&IngestLabels { result })
                .inc_by(0);
        }
        metrics
    }

    /// Copies the pool's current status into the pool gauge.
    pub fn observe_pool(&self, pool: &deadpool_postgres::Pool) {
        let status = pool.status();
        let in_use = status.size.saturating_sub(status.available) as i64;
        let set = |state, value: i64| {
            self.pool_connections
                .get_or_create(&PoolLabels { state })
                .set(value);
        };
        set("idle", status.available as i64);
        set("in_use", in_use);
        set("max", status.max_size as i64);
        set("waiting", status.waiting as i64);
    }
}
