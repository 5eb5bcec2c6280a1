//! Per-identity, per-endpoint-class rate limiting for the `/v1/metrics/*` GET endpoints (SPEC §5).
//!
//! Each endpoint class has its own per-minute budget and its own `governor` keyed limiter (GCRA),
//! keyed by the caller's identity after authentication (`key:<uuid>` of the key found, never
//! the header's spelling; `ip:<addr>` when auth is disabled), so one
//! client exhausting the drilldown budget neither slows another client nor its own summary calls.
//! A budget of N per minute allows a burst of N and then refills one request every 60/N seconds.
//! [`admit`] runs once the caller is authenticated; [`limit_headers`] puts its outcome on the response.

use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use flowmeter_shared::config::{ConfigError, Env};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::Quota;

/// The window every budget is expressed over, in seconds (the `w=60` of the policy header).
const WINDOW_SECONDS: u32 = 60;

const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const X_RATELIMIT_POLICY: HeaderName = HeaderName::from_static("x-ratelimit-policy");

/// Endpoint classes with their own budgets (per minute): Summary 100, Trends 60, Breakdown 60,
/// Drilldown 30, Other 120 (health, alerts, actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointClass {
    /// `GET /v1/metrics/summary`.
    Summary,
    /// `GET /v1/metrics/trends`.
    Trends,
    /// `GET /v1/metrics/breakdown`.
    Breakdown,
    /// `GET /v1/metrics/drilldown`.
    Drilldown,
    /// `GET /v1/metrics/health`, `/alerts` and `/actions`.
    Other,
}

impl EndpointClass {
    /// The class of a route template (actix's `match_pattern()`), or `None` for routes this
    /// scheme does not limit: ingest, `/health*`, `/metrics`, the OpenAPI document and the
    /// alert acknowledgement (a POST).
    pub fn for_route(route_template: &str) -> Option<EndpointClass> {
        match route_template {
            "/v1/metrics/summary" => Some(Self::Summary),
            "/v1/metrics/trends" => Some(Self::Trends),
            "/v1/metrics/breakdown" => Some(Self::Breakdown),
            "/v1/metrics/drilldown" => Some(Self::Drilldown),
            "/v1/metrics/health"
            | "/v1/metrics/alerts"
            | "/v1/metrics/actions"
            | "/v1/projects"
            | "/v1/projects/{id}" => Some(Self::Other),
            _ => None,
        }
    }
}

/// Per-minute budgets per endpoint class; 0 disables limiting for that class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Summary requests per minute.
    pub summary: u32,
    /// Trends requests per minute.
    pub trends: u32,
    /// Breakdown requests per minute.
    pub breakdown: u32,
    /// Drilldown requests per minute.
    pub drilldown: u32,
    /// Health, alerts and actions requests per minute.
    pub other: u32,
    /// Failed authentications per client address and minute (`failed_auth`).
    pub unauthenticated: u32,
}

impl Default for RateLimits {
    /// The SPEC §5 budgets.
    fn default() -> Self {
        Self {
            summary: 100,
            trends: 60,
            breakdown: 60,
            drilldown: 30,
            other: 120,
            unauthenticated: 300,
        }
    }
}

impl RateLimits {
    /// Reads `FLOWMETER_RATE_LIMIT_SUMMARY`, `_TRENDS`, `_BREAKDOWN`, `_DRILLDOWN`, `_OTHER` and
    /// `_UNAUTHENTICATED`
    /// (requests per minute, 0 = off, at most 1 000 000), defaulting to the SPEC numbers; a bad
    /// value is a [`ConfigError`] naming the variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            summary: budget(env, "FLOWMETER_RATE_LIMIT_SUMMARY", defaults.summary)?,
            trends: budget(env, "FLOWMETER_RATE_LIMIT_TRENDS", defaults.trends)?,
            breakdown: budget(env, "FLOWMETER_RATE_LIMIT_BREAKDOWN", defaults.breakdown)?,
            drilldown: budget(env, "FLOWMETER_RATE_LIMIT_DRILLDOWN", defaults.drilldown)?,
            other: budget(env, "FLOWMETER_RATE_LIMIT_OTHER", defaults.other)?,
            unauthenticated: budget(
                env,
                "FLOWMETER_RATE_LIMIT_UNAUTHENTICATED",
                defaults.unauthenticated,
            )?,
        })
    }

    fn for_class(&self, class: EndpointClass) -> u32 {
        match class {
            EndpointClass::Summary => self.summary,
            EndpointClass::Trends => self.trends,
            EndpointClass::Breakdown => self.breakdown,
            EndpointClass::Drilldown => self.drilldown,
            EndpointClass::Other => self.other,
        }
    }
}

fn budget(env: &Env, name: &'static str, default: u32) -> Result<u32, ConfigError> {
    let value = env.int_in_range(name, u64::from(default), 0, 1_000_000)?;
    // The range check above keeps the value well inside u32; this only avoids a bare cast.
    u32::try_from(value).map_err(|e| ConfigError::Invalid {
        name,
        value: value.to_string(),
        message: e.to_string(),
    })
}

/// The outcome of one check, carried on every limited response as headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateInfo {
    /// The class's budget per window (`X-RateLimit-Limit`).
    pub limit: u32,
    /// How many more requests this identity could make right now (`X-RateLimit-Remaining`).
    pub remaining: u32,
    /// Epoch second by which the identity's budget is fully replenished (`X-RateLimit-Reset`).
    pub reset_epoch_seconds: u64,
    /// The policy, e.g. `100;w=60` (`X-RateLimit-Policy`).
    pub policy: String,
    /// Whole seconds (at least 1) until the next request is allowed; `Some` only on denials
    /// (`Retry-After`).
    pub retry_after_seconds: Option<u64>,
}

type KeyedLimiter<C> =
    governor::RateLimiter<String, DefaultKeyedStateStore<String>, C, StateInformationMiddleware>;

/// One class's budget and its keyed limiter.
struct ClassLimiter<C: Clock> {
    limit: u32,
    /// Time to earn back one request (60 s / limit).
    replenish_interval: Duration,
    limiter: KeyedLimiter<C>,
}

/// Keyed GCRA limiters, one per enabled endpoint class, keyed by identity.
///
/// The clock parameter exists so tests can drive time with governor's `FakeRelativeClock`;
/// the application uses the default (monotonic) clock through [`RateLimiter::new`].
pub struct RateLimiter<C: Clock = DefaultClock> {
    summary: Option<ClassLimiter<C>>,
    trends: Option<ClassLimiter<C>>,
    breakdown: Option<ClassLimiter<C>>,
    drilldown: Option<ClassLimiter<C>>,
    other: Option<ClassLimiter<C>>,
}

impl RateLimiter<DefaultClock> {
    /// Builds the limiters for the given budgets on the process's monotonic clock.
    pub fn new(limits: &RateLimits) -> Self {
        Self::with_clock(limits, DefaultClock::default())
    }

    /// Adds `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch seconds),
    /// `X-RateLimit-Policy` and, for denials, `Retry-After`, replacing any earlier values.
    pub fn apply_headers(info: &RateInfo, headers: &mut HeaderMap) {
        headers.insert(X_RATELIMIT_LIMIT, HeaderValue::from(info.limit));
        headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(info.remaining));
        headers.insert(
            X_RATELIMIT_RESET,
            HeaderValue::from(info.reset_epoch_seconds),
        );
        // The policy is built from digits here, so this only skips a hand-made invalid value.
        if let Ok(policy) = HeaderValue::from_str(&info.policy) {
            headers.insert(X_RATELIMIT_POLICY, policy);
        }
        if let Some(retry_after) = info.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    /// Builds the limiters on a given clock (tests pass governor's `FakeRelativeClock`).
    pub fn with_clock(limits: &RateLimits, clock: C) -> Self {
        let build = |class| {
            let limit = limits.for_class(class);
            let burst = NonZeroU32::new(limit)?;
            let quota = Quota::per_minute(burst);
            Some(ClassLimiter {
                limit,
                replenish_interval: quota.replenish_interval(),
                limiter: governor::RateLimiter::dashmap_with_clock(quota, clock.clone())
                    .with_middleware::<StateInformationMiddleware>(),
            })
        };
        Self {
            summary: build(EndpointClass::Summary),
            trends: build(EndpointClass::Trends),
            breakdown: build(EndpointClass::Breakdown),
            drilldown: build(EndpointClass::Drilldown),
            other: build(EndpointClass::Other),
        }
    }
}

impl<C: Clock> RateLimiter<C> {
    fn class(&self, class: EndpointClass) -> Option<&ClassLimiter<C>> {
        match class {
            EndpointClass::Summary => self.summary.as_ref(),
            EndpointClass::Trends => self.trends.as_ref(),
            EndpointClass::Breakdown => self.breakdown.as_ref(),
            EndpointClass::Drilldown => self.drilldown.as_ref(),
            EndpointClass::Other => self.other.as_ref(),
        }
    }

    fn classes(&self) -> impl Iterator<Item = &ClassLimiter<C>> {
        [
            &self.summary,
            &self.trends,
            &self.breakdown,
            &self.drilldown,
            &self.other,
        ]
        .into_iter()
        .flatten()
    }

    /// Checks and counts one request. `Ok(info)` when allowed, `Err(info)` when over the limit
    /// (`retry_after_seconds` set, `remaining` 0), `None` when the class is disabled (budget 0).
    ///
    /// `reset_epoch_seconds` always means "fully replenished", rounded up to a whole second.
    /// When allowed it is now + (limit − remaining) × interval: governor reports the remaining
    /// burst rounded down, so this is at most one interval late and never early. When denied
    /// it is exact: the next request is allowed after the wait, and the other limit − 1
    /// requests take one interval each after that.
    pub fn check(
        &self,
        class: EndpointClass,
        identity: &str,
    ) -> Option<Result<RateInfo, RateInfo>> {
        let class = self.class(class)?;
        let policy = format!("{};w={WINDOW_SECONDS}", class.limit);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Some(match class.limiter.check_key(&identity.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let until_full = class
                    .replenish_interval
                    .saturating_mul(class.limit.saturating_sub(remaining));
                Ok(RateInfo {
                    limit: class.limit,
                    remaining,
                    reset_epoch_seconds: ceil_seconds(now.saturating_add(until_full)),
                    policy,
                    retry_after_seconds: None,
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(class.limiter.clock().now());
                let retry_after = ceil_seconds(wait).max(1);
                let until_full = wait.saturating_add(
                    class
                        .replenish_interval
                        .saturating_mul(class.limit.saturating_sub(1)),
                );
                // Rounding Retry-After up to one second must not put it after the reset.
                let reset = ceil_seconds(now.saturating_add(until_full))
                    .max(ceil_seconds(now).saturating_add(retry_after));
                Err(RateInfo {
                    limit: class.limit,
                    remaining: 0,
                    reset_epoch_seconds: reset,
                    policy,
                    retry_after_seconds: Some(retry_after),
                })
            }
        })
    }

    /// Forgets identities whose budget is back to full and releases the memory, on every class.
    ///
    /// Governor's keyed store keeps one entry per identity ever seen; the app calls this
    /// periodically so memory tracks recently active clients, not all clients.
    pub fn retain_recent(&self) {
        for class in self.classes() {
            class.limiter.retain_recent();
            class.limiter.shrink_to_fit();
        }
    }

    /// How many identities are tracked across all classes (an estimate under concurrency).
    pub fn tracked_keys(&self) -> usize {
        self.classes().map(|class| class.limiter.len()).sum()
    }
}

impl<C: Clock> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = |class: &Option<ClassLimiter<C>>| class.as_ref().map_or(0, |c| c.limit);
        f.debug_struct("RateLimiter")
            .field("summary", &limit(&self.summary))
            .field("trends", &limit(&self.trends))
            .field("breakdown", &limit(&self.breakdown))
            .field("drilldown", &limit(&self.drilldown))
            .field("other", &limit(&self.other))
            .finish()
    }
}

/// Whole seconds, rounded up.
fn ceil_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// Counts one request of an authenticated caller against its endpoint class's budget (GET
/// requests to limited routes only). The identity is the key's id (`key:<uuid>`), so every
/// spelling of one key shares one budget, and a key that fails authentication never gets
/// here (see `failed_auth`); with authentication disabled it is the client address. The
/// outcome is left in the request's extensions for [`limit_headers`]; over the budget → 429.
pub fn admit(
    req: &actix_web::HttpRequest,
    principal: &crate::auth::Principal,
) -> Result<(), crate::error::ApiError> {
    use actix_web::HttpMessage;
    let class = (req.method() == actix_web::http::Method::GET)
        .then(|| req.match_pattern())
        .flatten()
        .and_then(|route| EndpointClass::for_route(&route));
    let limiter = req.app_data::<actix_web::web::Data<RateLimiter>>();
    let (Some(class), Some(limiter)) = (class, limiter) else {
        return Ok(());
    };
    let identity = match principal.key_id() {
        Some(id) => format!("key:{id}"),
        None => format!(
            "ip:{}",
            req.peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default()
        ),
    };
    match limiter.check(class, &identity) {
        None => Ok(()),
        Some(Ok(info)) => {
            req.extensions_mut().insert(info);
            Ok(())
        }
        Some(Err(info)) => {
            let retry_after_secs = info.retry_after_seconds.unwrap_or(1);
            req.extensions_mut().insert(info);
            Err(crate::error::ApiError::RateLimited { retry_after_secs })
        }
    }
}

/// The middleware: adds the rate-limit headers of whatever [`admit`] (or the
/// failed-authentication limit) decided for the request, on success and on 429 alike.
pub async fn limit_headers(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    let mut response = next.call(req).await?.map_into_boxed_body();
    let info = response.request().extensions().get::<RateInfo>().cloned();
    if let Some(info) = info {
        RateLimiter::apply_headers(&info, response.headers_mut());
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn fake_limiter(limits: &RateLimits) -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (RateLimiter::with_clock(limits, clock.clone()), clock)
    }

    fn epoch_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn allowed(
        limiter: &RateLimiter<FakeRelativeClock>,
        class: EndpointClass,
        who: &str,
    ) -> RateInfo {
        limiter.check(class, who).unwrap().unwrap()
    }

    fn denied(
        limiter: &RateLimiter<FakeRelativeClock>,
        class: EndpointClass,
        who: &str,
    ) -> RateInfo {
        limiter.check(class, who).unwrap().unwrap_err()
    }

    #[test]
    fn hundred_and_first_summary_request_is_denied_while_another_identity_is_allowed() {
        let (limiter, _clock) = fake_limiter(&RateLimits::default());
        for _ in 0..100 {
            allowed(&limiter, EndpointClass::Summary, "key:a");
        }
        let info = denied(&limiter, EndpointClass::Summary, "key:a");
        assert_eq!(info.remaining, 0);
        assert_eq!(info.limit, 100);
        assert_eq!(info.policy, "100;w=60");
        assert!(info.retry_after_seconds.unwrap() >= 1, "{info:?}");

        let other = allowed(&limiter, EndpointClass::Summary, "ip:127.0.0.1");
        assert_eq!(other.remaining, 99);
        assert_eq!(other.retry_after_seconds, None);
    }

    #[test]
    fn remaining_counts_down_by_one_per_allowed_request() {
        let (limiter, _clock) = fake_limiter(&RateLimits::default());
        for expected in (0..100).rev() {
            let info = allowed(&limiter, EndpointClass::Summary, "key:a");
            assert_eq!(info.remaining, expected);
        }
        assert_eq!(
            denied(&limiter, EndpointClass::Summary, "key:a").remaining,
            0
        );
    }

    #[test]
    fn a_denied_request_is_not_counted_and_one_interval_earns_one_request() {
        let (limiter, clock) = fake_limiter(&RateLimits::default());
        for _ in 0..100 {
            allowed(&limiter, EndpointClass::Summary, "key:a");
        }
        for _ in 0..5 {
            let info = denied(&limiter, EndpointClass::Summary, "key:a");
            // 60 s / 100 = 0.6 s until the next request, rounded up.
            assert_eq!(info.retry_after_seconds, Some(1));
        }
        clock.advance(Duration::from_millis(600));
        assert_eq!(
            allowed(&limiter, EndpointClass::Summary, "key:a").remaining,
            0
        );
        denied(&limiter, EndpointClass::Summary, "key:a");
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            allowed(&limiter, EndpointClass::Summary, "key:a").remaining,
            99
        );
    }

    #[test]
    fn reset_is_when_the_budget_is_full_again() {
        let (limiter, _clock) = fake_limiter(&RateLimits::default());
        let before = epoch_now();
        let first = allowed(&limiter, EndpointClass::Drilldown, "key:a");
        let after_first = epoch_now();
        // One request used: earned back after 60 s / 30 = 2 s, rounded up to a whole second.
        assert!(
            (before + 2..=after_first + 3).contains(&first.reset_epoch_seconds),
            "{first:?}"
        );
        for _ in 1..30 {
            allowed(&limiter, EndpointClass::Drilldown, "key:a");
        }
        let info = denied(&limiter, EndpointClass::Drilldown, "key:a");
        let after = epoch_now();
        assert_eq!(info.retry_after_seconds, Some(2));
        assert!(
            (before + 60..=after + 61).contains(&info.reset_epoch_seconds),
            "{info:?}"
        );
    }

    #[test]
    fn a_class_with_budget_zero_is_not_limited() {
        let limits = RateLimits {
            trends: 0,
            ..RateLimits::default()
        };
        let (limiter, _clock) = fake_limiter(&limits);
        for _ in 0..1000 {
            assert_eq!(limiter.check(EndpointClass::Trends, "key:a"), None);
        }
        assert!(limiter.check(EndpointClass::Summary, "key:a").is_some());
    }

    #[test]
    fn each_class_has_its_own_budget() {
        let (limiter, _clock) = fake_limiter(&RateLimits::default());
        let budgets = [
            (EndpointClass::Summary, 100),
            (EndpointClass::Trends, 60),
            (EndpointClass::Breakdown, 60),
            (EndpointClass::Drilldown, 30),
            (EndpointClass::Other, 120),
        ];
        for (class, budget) in budgets {
            for _ in 0..budget {
                let info = allowed(&limiter, class, "key:a");
                assert_eq!(info.limit, budget);
            }
            let info = denied(&limiter, class, "key:a");
            assert_eq!(info.policy, format!("{budget};w=60"));
        }
    }

    #[test]
    fn exhausting_one_class_leaves_the_others_untouched() {
        let (limiter, _clock) = fake_limiter(&RateLimits::default());
        for _ in 0..30 {
            allowed(&limiter, EndpointClass::Drilldown, "key:a");
        }
        denied(&limiter, EndpointClass::Drilldown, "key:a");
        assert_eq!(
            allowed(&limiter, EndpointClass::Summary, "key:a").remaining,
            99
        );
        assert_eq!(
            allowed(&limiter, EndpointClass::Other, "key:a").remaining,
            119
        );
    }

    #[test]
    fn routes_map_to_their_classes() {
        let cases = [
            ("/v1/metrics/summary", Some(EndpointClass::Summary)),
            ("/v1/metrics/trends", Some(EndpointClass::Trends)),
            ("/v1/metrics/breakdown", Some(EndpointClass::Breakdown)),
            ("/v1/metrics/drilldown", Some(EndpointClass::Drilldown)),
            ("/v1/metrics/health", Some(EndpointClass::Other)),
            ("/v1/metrics/alerts", Some(EndpointClass::Other)),
            ("/v1/metrics/actions", Some(EndpointClass::Other)),
            ("/v1/metrics/alerts/{id}/acknowledge", None),
            ("/v1/events", None),
            ("/v1/openapi.json", None),
            ("/health", None),
            ("/health/db", None),
            ("/metrics", None),
            ("", None),
        ];
        for (route, class) in cases {
            assert_eq!(EndpointClass::for_route(route), class, "{route}");
        }
    }

    #[test]
    fn apply_headers_sets_exact_names_and_values() {
        let mut headers = HeaderMap::new();
        let info = RateInfo {
            limit: 100,
            remaining: 0,
            reset_epoch_seconds: 1_700_000_060,
            policy: "100;w=60".to_owned(),
            retry_after_seconds: Some(1),
        };
        RateLimiter::apply_headers(&info, &mut headers);
        let get = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(get("X-RateLimit-Limit"), "100");
        assert_eq!(get("X-RateLimit-Remaining"), "0");
        assert_eq!(get("X-RateLimit-Reset"), "1700000060");
        assert_eq!(get("X-RateLimit-Policy"), "100;w=60");
        assert_eq!(get("Retry-After"), "1");
        assert_eq!(headers.len(), 5);

        let mut headers = HeaderMap::new();
        let info = RateInfo {
            remaining: 42,
            retry_after_seconds: None,
            ..info
        };
        RateLimiter::apply_headers(&info, &mut headers);
        assert_eq!(headers.get("x-ratelimit-remaining").unwrap(), "42");
        assert!(headers.get(header::RETRY_AFTER).is_none());
        assert_eq!(headers.len(), 4);
    }

    #[test]
    fn from_env_defaults_to_the_spec_budgets() {
        assert_eq!(
            RateLimits::from_env(&Env::default()).unwrap(),
            RateLimits::default()
        );
        let env = Env::from_pairs([
            ("FLOWMETER_RATE_LIMIT_SUMMARY", "5"),
            ("FLOWMETER_RATE_LIMIT_OTHER", "0"),
        ]);
        let limits = RateLimits::from_env(&env).unwrap();
        assert_eq!(limits.summary, 5);
        assert_eq!(limits.other, 0);
        assert_eq!(limits.drilldown, 30);
    }

    #[test]
    fn from_env_rejects_a_non_number_naming_the_variable() {
        for name in [
            "FLOWMETER_RATE_LIMIT_SUMMARY",
            "FLOWMETER_RATE_LIMIT_TRENDS",
            "FLOWMETER_RATE_LIMIT_BREAKDOWN",
            "FLOWMETER_RATE_LIMIT_DRILLDOWN",
            "FLOWMETER_RATE_LIMIT_OTHER",
        ] {
            let env = Env::from_pairs([(name, "abc")]);
            let err = RateLimits::from_env(&env).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
        let env = Env::from_pairs([("FLOWMETER_RATE_LIMIT_DRILLDOWN", "1000001")]);
        let err = RateLimits::from_env(&env).unwrap_err().to_string();
        assert!(err.contains("FLOWMETER_RATE_LIMIT_DRILLDOWN"), "{err}");
    }

    #[test]
    fn retain_recent_forgets_identities_whose_budget_is_full() {
        let (limiter, clock) = fake_limiter(&RateLimits::default());
        for i in 0..50 {
            allowed(&limiter, EndpointClass::Summary, &format!("ip:10.0.0.{i}"));
        }
        allowed(&limiter, EndpointClass::Drilldown, "key:a");
        assert_eq!(limiter.tracked_keys(), 51);
        limiter.retain_recent();
        assert_eq!(limiter.tracked_keys(), 51, "recent identities are kept");
        clock.advance(Duration::from_secs(61));
        limiter.retain_recent();
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[test]
    fn the_default_limiter_can_be_shared_across_workers() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RateLimiter>();
        let limiter = RateLimiter::new(&RateLimits::default());
        assert_eq!(allowed_real(&limiter).remaining, 99);
    }

    fn allowed_real(limiter: &RateLimiter) -> RateInfo {
        limiter
            .check(EndpointClass::Summary, "key:a")
            .unwrap()
            .unwrap()
    }
}
