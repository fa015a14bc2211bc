//! Rate limits with `governor` (GCRA), keyed per client IP or per user.
//!
//! Three policies: `auth` (login and register, per IP: brute force), `anon` (other
//! routes without a token, per IP) and `user` (routes with a token, per token `sub`).
//! Each answer carries the IETF headers of draft-ietf-httpapi-ratelimit-headers:
//! `RateLimit-Policy: "auth";q=10;w=60` and `RateLimit: "auth";r=9;t=6`; a refusal is
//! 429 `resource_exhausted` with `Retry-After`.
//!
//! IPv6 clients are keyed by their /64 (one host usually owns a whole /64). Keyed
//! state is pruned by [`Limits::retain_recent`], which `start` runs every minute.

use crate::config::RateLimits;
use crate::error::ApiError;
use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use proto_msgs::ErrorCode;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;
use uuid::Uuid;

/// `RateLimit` header (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// `RateLimit-Policy` header (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Which quota applies to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Auth,
    Anon,
    User,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Auth => "auth",
            Policy::Anon => "anon",
            Policy::User => "user",
        }
    }
}

/// The outcome of one check, with what the headers say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub policy: Policy,
    /// Requests allowed per window (`q`).
    pub quota: u32,
    /// Requests left now (`r`).
    pub remaining: u32,
    /// Seconds until the quota is whole again (`t`); on a refusal, until the next
    /// request may pass.
    pub reset_s: u64,
    /// Set when the request is refused.
    pub retry_after_s: Option<u64>,
}

/// The window every quota is expressed in.
const WINDOW_S: u64 = 60;

impl Decision {
    pub fn limited(&self) -> bool {
        self.retry_after_s.is_some()
    }

    /// `RateLimit-Policy`, `RateLimit` and, on a refusal, `Retry-After`.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let name = self.policy.as_str();
        let mut out = vec![
            (
                RATELIMIT_POLICY,
                HeaderValue::from_str(&format!("\"{name}\";q={};w={WINDOW_S}", self.quota)),
            ),
            (
                RATELIMIT,
                HeaderValue::from_str(&format!(
                    "\"{name}\";r={};t={}",
                    self.remaining, self.reset_s
                )),
            ),
        ];
        if let Some(s) = self.retry_after_s {
            out.push((header::RETRY_AFTER, HeaderValue::from_str(&s.to_string())));
        }
        out.into_iter()
            .filter_map(|(n, v)| v.ok().map(|v| (n, v)))
            .collect()
    }

    /// The 429 for a refused request.
    pub fn error(&self) -> ApiError {
        let retry = self.retry_after_s.unwrap_or(1);
        let mut err = ApiError::new(
            ErrorCode::ResourceExhausted,
            format!(
                "too many requests (policy {:?}: {} per minute); retry in {retry} s",
                self.policy.as_str(),
                self.quota
            ),
        )
        .with_details(serde_json::json!({
            "policy": self.policy.as_str(),
            proto_msgs::envelope::RETRY_AFTER_S: retry,
        }));
        for (name, value) in self.headers() {
            err = err.with_header(name, value);
        }
        err
    }
}

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// One policy's keyed limiter.
pub struct Limiter<K: Hash + Eq + Clone> {
    policy: Policy,
    per_min: u32,
    interval: Duration,
    inner: Keyed<K>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// `None` when `per_min` is 0 (policy off).
    fn new(policy: Policy, per_min: u32) -> Option<Self> {
        let burst = NonZeroU32::new(per_min)?;
        let quota = Quota::per_minute(burst);
        Some(Limiter {
            policy,
            per_min,
            interval: quota.replenish_interval(),
            inner: RateLimiter::dashmap_with_clock(quota, DefaultClock::default())
                .with_middleware::<StateInformationMiddleware>(),
        })
    }

    pub fn check(&self, key: &K) -> Decision {
        match self.inner.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = self.per_min.saturating_sub(remaining);
                Decision {
                    policy: self.policy,
                    quota: self.per_min,
                    remaining,
                    reset_s: ceil_secs(self.interval * used),
                    retry_after_s: None,
                }
            }
            Err(not_until) => {
                let wait = ceil_secs(not_until.wait_time_from(self.inner.clock().now())).max(1);
                Decision {
                    policy: self.policy,
                    quota: self.per_min,
                    remaining: 0,
                    reset_s: wait,
                    retry_after_s: Some(wait),
                }
            }
        }
    }

    /// Forgets keys whose bucket is full again; they would behave as new keys anyway.
    fn retain_recent(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Every policy of the gateway.
pub struct Limits {
    pub auth: Option<Limiter<IpAddr>>,
    pub anon: Option<Limiter<IpAddr>>,
    pub user: Option<Limiter<Uuid>>,
}

impl Limits {
    pub fn new(config: &RateLimits) -> Self {
        Limits {
            auth: Limiter::new(Policy::Auth, config.auth_per_min),
            anon: Limiter::new(Policy::Anon, config.anon_per_min),
            user: Limiter::new(Policy::User, config.user_per_min),
        }
    }

    /// Charges one request to `ip` under `policy` (`auth` or `anon`); `None` when the
    /// policy is off.
    pub fn check_ip(&self, policy: Policy, ip: IpAddr) -> Option<Decision> {
        let limiter = match policy {
            Policy::Auth => self.auth.as_ref(),
            _ => self.anon.as_ref(),
        }?;
        Some(limiter.check(&ip_key(ip)))
    }

    /// Charges one request to a user.
    pub fn check_user(&self, user: Uuid) -> Option<Decision> {
        self.user.as_ref().map(|l| l.check(&user))
    }

    /// Drops state of keys that are idle long enough to have a full bucket again.
    pub fn retain_recent(&self) {
        if let Some(l) = &self.auth {
            l.retain_recent();
        }
        if let Some(l) = &self.anon {
            l.retain_recent();
        }
        if let Some(l) = &self.user {
            l.retain_recent();
        }
    }
}

/// The address a limit is charged to: IPv4 as is, IPv6 by /64.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The client's address. With `trusted_hops` = 0, the TCP peer. Behind N proxies of
/// our own (`TRUSTED_PROXY_HOPS`), `X-Forwarded-For` is read from the right: each of our
/// proxies appended the address it was reached from, so the N-th entry from the right
/// is the client as the outermost of them saw it; anything further left is whatever
/// the client claimed and is ignored. An entry that is not an address stops the walk:
/// the hop that handed it on is taken for the client (it cannot be spoofed into
/// another's address, only into its own).
pub fn client_ip(req: &HttpRequest, trusted_hops: usize) -> IpAddr {
    let mut client = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    if trusted_hops == 0 {
        return client;
    }
    let entries: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    for entry in entries.iter().rev().take(trusted_hops) {
        match parse_hop(entry) {
            Some(ip) => client = ip,
            None => break,
        }
    }
    client
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:5000`, `2001:db8::1` or
/// `[2001:db8::1]:5000`.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn counts_down_then_refuses_with_headers() {
        let limits = Limits::new(&RateLimits {
            auth_per_min: 3,
            anon_per_min: 0,
            user_per_min: 5,
        });
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let seen: Vec<u32> = (0..3)
            .map(|_| limits.check_ip(Policy::Auth, ip).unwrap().remaining)
            .collect();
        assert_eq!(seen, vec![2, 1, 0]);
        let refused = limits.check_ip(Policy::Auth, ip).unwrap();
        assert!(refused.limited());
        let retry = refused.retry_after_s.unwrap();
        assert!((1..=20).contains(&retry), "{retry}");
        let headers: Vec<(String, String)> = refused
            .headers()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            headers[0],
            ("ratelimit-policy".into(), "\"auth\";q=3;w=60".into())
        );
        assert_eq!(
            headers[1],
            ("ratelimit".into(), format!("\"auth\";r=0;t={retry}"))
        );
        assert_eq!(headers[2], ("retry-after".into(), retry.to_string()));
        assert_eq!(refused.error().code, ErrorCode::ResourceExhausted);

        // Another client is not affected; a policy set to 0 is off.
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(!limits.check_ip(Policy::Auth, other).unwrap().limited());
        assert!(limits.check_ip(Policy::Anon, ip).is_none());
        let d = limits.check_user(Uuid::new_v4()).unwrap();
        assert_eq!((d.quota, d.remaining, d.reset_s), (5, 4, 12));
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let limits = Limits::new(&RateLimits::default());
        for i in 0..50u8 {
            limits.check_ip(Policy::Anon, IpAddr::from([10, 0, 0, i]));
        }
        let anon = limits.anon.as_ref().unwrap();
        assert_eq!(anon.len(), 50);
        // Buckets are not full yet: kept.
        limits.retain_recent();
        assert_eq!(anon.len(), 50);
    }

    #[test]
    fn ipv6_is_keyed_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(ip_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_for_the_trusted_hops_only() {
        let ip = |xff: &str, hops: usize| {
            let req = TestRequest::default()
                .peer_addr("198.51.100.1:5000".parse().unwrap())
                .insert_header(("X-Forwarded-For", xff))
                .to_http_request();
            client_ip(&req, hops).to_string()
        };
        // No proxy of ours: the header is the client's own claim.
        assert_eq!(ip("6.6.6.6, 203.0.113.9", 0), "198.51.100.1");
        // One: the rightmost entry, appended by our proxy; the rest is ignored.
        assert_eq!(ip("6.6.6.6, 203.0.113.9", 1), "203.0.113.9");
        // Two: the one our outer proxy appended.
        assert_eq!(ip("6.6.6.6, 203.0.113.9, 10.0.0.2", 2), "203.0.113.9");
        assert_eq!(ip("203.0.113.9:4711, 10.0.0.2", 2), "203.0.113.9");
        assert_eq!(ip("[2001:db8::7]:443", 1), "2001:db8::7");
        // An entry that is not an address: the hop that handed it on is the client.
        assert_eq!(ip("garbage", 1), "198.51.100.1");
        assert_eq!(ip("6.6.6.6, garbage, 10.0.0.2", 2), "10.0.0.2");
        // Fewer entries than hops: the leftmost our proxies wrote.
        assert_eq!(ip("203.0.113.9", 3), "203.0.113.9");
    }
}
