//! Who may read the operational endpoints: `/metrics`, `/metrics/users`,
//! `/metrics/orders` and the detailed report of `/health/ready`.
//!
//! They tell an outsider a lot (routes and error rates, queue depths, which dependency
//! is down), so they need the bearer token `METRICS_TOKEN`, or a request on the
//! internal listener (`INTERNAL_ADDR`, for a scraper on a private network). `/health`
//! stays public, and `/health/ready` still answers everyone with its status code and
//! `{"status": …}`, which is all a load balancer needs. With neither configured (a
//! developer machine) they are open, and the gateway says so when it starts;
//! production refuses that.

use actix_web::HttpRequest;
use actix_web::http::header;
use proc_kit::Secret;
use std::net::SocketAddr;

/// How the operational endpoints are guarded.
#[derive(Debug, Clone, Default)]
pub struct OpsAccess {
    /// `METRICS_TOKEN`.
    pub token: Option<Secret>,
    /// `INTERNAL_ADDR`: requests reaching this address need no token.
    pub internal: Option<SocketAddr>,
}

impl OpsAccess {
    /// Neither a token nor an internal listener: everyone may read them.
    pub fn is_open(&self) -> bool {
        self.token.is_none() && self.internal.is_none()
    }

    /// Whether `req` may read the operational endpoints.
    pub fn allows(&self, req: &HttpRequest) -> bool {
        if self.is_open() {
            return true;
        }
        if let Some(internal) = self.internal
            && req.app_config().local_addr() == internal
        {
            return true;
        }
        let Some(token) = &self.token else {
            return false;
        };
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| same(given.trim().as_bytes(), token.expose().as_bytes()))
    }
}

/// The answer to a request for an operational endpoint without the token.
pub fn refused() -> crate::error::ApiError {
    crate::error::ApiError::new(
        proto_msgs::ErrorCode::Unauthenticated,
        "this endpoint needs the operations token: Authorization: Bearer <METRICS_TOKEN>",
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"ops\""),
    )
}

/// Compares without leaking, through timing, how much of the token a guess got right.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn token_or_nothing() {
        let ops = OpsAccess {
            token: Some(Secret::new("s3cret-token")),
            internal: None,
        };
        let with = |auth: &str| {
            TestRequest::default()
                .insert_header((header::AUTHORIZATION, auth))
                .to_http_request()
        };
        assert!(ops.allows(&with("Bearer s3cret-token")));
        assert!(!ops.allows(&with("Bearer s3cret-tokeN")));
        assert!(!ops.allows(&with("s3cret-token")));
        assert!(!ops.allows(&TestRequest::default().to_http_request()));
        assert!(OpsAccess::default().allows(&TestRequest::default().to_http_request()));
    }
}
