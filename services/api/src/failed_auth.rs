//! Requests that fail authentication are limited per client address (SPEC §14,
//! `FLOWMETER_RATE_LIMIT_UNAUTHENTICATED`, default 300 a minute): past the budget they get
//! 429 before any key lookup, so a flood of random keys costs neither database work nor
//! memory. The table is keyed by address (never by what the client presents) and holds at
//! most [`MAX_ADDRESSES`] entries; when it is full of live windows, further addresses share
//! one overflow entry, so memory stays bounded under any flood.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{web, HttpMessage, HttpRequest};

use crate::error::ApiError;
use crate::rate_limit::RateInfo;

/// The most addresses tracked at once (about 5 MB at most).
pub const MAX_ADDRESSES: usize = 65_536;

/// The window failures are counted over.
const WINDOW: Duration = Duration::from_secs(60);

/// Where addresses go when the table is full.
const OVERFLOW: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failed authentications per client address, in fixed one-minute windows.
#[derive(Debug)]
pub struct FailedAuthLimiter {
    /// Failures allowed per address and minute; 0 disables the limit.
    limit: u32,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl FailedAuthLimiter {
    /// A limiter allowing `limit` failures per address and minute (0: unlimited).
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            windows: Mutex::default(),
        }
    }

    /// When the address is over its budget: the time until its window ends.
    fn blocked_for(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let windows = self.windows.lock().ok()?;
        let window = windows.get(&address).or_else(|| {
            (windows.len() >= MAX_ADDRESSES)
                .then(|| windows.get(&OVERFLOW))
                .flatten()
        })?;
        let elapsed = now.saturating_duration_since(window.started);
        (elapsed < WINDOW && window.failures >= self.limit).then(|| WINDOW - elapsed)
    }

    /// Counts one failure of the address; the time until its window ends when this one
    /// went over the budget.
    fn record(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let mut windows = self.windows.lock().ok()?;
        let mut key = address;
        if !windows.contains_key(&key) && windows.len() >= MAX_ADDRESSES {
            windows.retain(|_, w| now.saturating_duration_since(w.started) < WINDOW);
            if windows.len() >= MAX_ADDRESSES {
                key = OVERFLOW;
            }
        }
        let window = windows.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.saturating_duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
        let elapsed = now.saturating_duration_since(window.started);
        (window.failures > self.limit).then(|| WINDOW - elapsed)
    }

    /// Forgets windows that have ended and releases their memory.
    pub fn prune(&self) {
        if let Ok(mut windows) = self.windows.lock() {
            let now = Instant::now();
            windows.retain(|_, w| now.saturating_duration_since(w.started) < WINDOW);
            windows.shrink_to_fit();
        }
    }

    /// How many addresses are tracked.
    pub fn tracked(&self) -> usize {
        self.windows.lock().map_or(0, |w| w.len())
    }

    fn limited(&self, req: &HttpRequest, wait: Duration) -> ApiError {
        let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let retry_after = retry_after.max(1);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        req.extensions_mut().insert(RateInfo {
            limit: self.limit,
            remaining: 0,
            reset_epoch_seconds: now + retry_after,
            policy: format!("{};w={}", self.limit, WINDOW.as_secs()),
            retry_after_seconds: Some(retry_after),
        });
        ApiError::RateLimited {
            retry_after_secs: retry_after,
        }
    }
}

fn limiter_and_address(req: &HttpRequest) -> Option<(web::Data<FailedAuthLimiter>, IpAddr)> {
    let limiter = req.app_data::<web::Data<FailedAuthLimiter>>()?.clone();
    let address = req.peer_addr()?.ip();
    Some((limiter, address))
}

/// 429 when the client's address is over its failed-authentication budget (checked before
/// the key is looked up).
pub fn check(req: &HttpRequest) -> Result<(), ApiError> {
    let Some((limiter, address)) = limiter_and_address(req) else {
        return Ok(());
    };
    match limiter.blocked_for(address, Instant::now()) {
        Some(wait) => Err(limiter.limited(req, wait)),
        None => Ok(()),
    }
}

/// Passes an authentication outcome through, counting a 401 against the client's address;
/// the failure that goes over the budget is answered 429 instead.
pub fn observe<T>(req: &HttpRequest, outcome: Result<T, ApiError>) -> Result<T, ApiError> {
    match outcome {
        Err(ApiError::Unauthorized(message)) => {
            let Some((limiter, address)) = limiter_and_address(req) else {
                return Err(ApiError::Unauthorized(message));
            };
            match limiter.record(address, Instant::now()) {
                Some(wait) => Err(limiter.limited(req, wait)),
                None => Err(ApiError::Unauthorized(message)),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(n))
    }

    #[test]
    fn the_failure_past_the_budget_is_limited_until_the_window_ends() {
        let limiter = FailedAuthLimiter::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.record(ip(1), t0), None);
        }
        assert_eq!(limiter.blocked_for(ip(1), t0), Some(WINDOW));
        assert!(limiter.record(ip(1), t0).is_some());
        assert_eq!(
            limiter.blocked_for(ip(2), t0),
            None,
            "other addresses are not"
        );
        let later = t0 + WINDOW;
        assert_eq!(limiter.blocked_for(ip(1), later), None);
        assert_eq!(limiter.record(ip(1), later), None);
    }

    #[test]
    fn the_table_never_holds_more_than_its_bound() {
        let limiter = FailedAuthLimiter::new(2);
        let t0 = Instant::now();
        for n in 0..(MAX_ADDRESSES as u32 + 5000) {
            limiter.record(ip(n), t0);
        }
        assert_eq!(limiter.tracked(), MAX_ADDRESSES + 1);
        // Addresses past the bound share the overflow entry, which is over its budget.
        assert!(limiter.blocked_for(ip(u32::MAX), t0).is_some());
        // Once the windows end, new addresses get their own entries again.
        let later = t0 + WINDOW;
        assert_eq!(limiter.record(ip(u32::MAX), later), None);
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn a_zero_budget_disables_the_limit() {
        let limiter = FailedAuthLimiter::new(0);
        for _ in 0..1000 {
            assert_eq!(limiter.record(ip(1), Instant::now()), None);
        }
        assert_eq!(limiter.tracked(), 0);
    }
}
