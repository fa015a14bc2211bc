//! The one error type of the HTTP layer and its single mapping to responses.
//!
//! Every error leaves the gateway as
//! `{"error": {"code", "message", "details"?}, "request_id"}` with the status of
//! [`ErrorCode::http_status`]. Three HTTP-only cases keep an existing code but use the
//! status HTTP defines for them: 405 (`unimplemented`), 413 and 415
//! (`invalid_argument`). Handlers just use `?`; the request id is filled in by the
//! telemetry middleware, which sees every response.

use actix_web::body::BoxBody;
use actix_web::error::{PathError, PayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use proto_msgs::{ErrorCode, RpcError};
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    /// Set only for the HTTP-only statuses (405, 413, 415).
    status: Option<StatusCode>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Set when the error leaves as an `Err` that actix renders by itself.
    request_id: Option<String>,
}

/// Marker in a response's extensions: its error body is final (has a request id).
#[derive(Debug, Clone, Copy)]
pub struct Rendered;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
    request_id: Option<&'a str>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    code: ErrorCode,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Value>,
}

/// What clients see instead of an internal failure's description.
const INTERNAL_MESSAGE: &str =
    "internal error; quote the request id when reporting it (the details are in our logs)";

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
            status: None,
            headers: Vec::new(),
            request_id: None,
        }
    }

    /// Renders the request id even when no middleware sees the response.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_owned());
        self
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// `invalid_argument` about one field: `details` is `{"field": <name>}`.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid_argument(message).with_details(serde_json::json!({ "field": field }))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// `415`: the body is not declared as JSON.
    pub fn unsupported_media_type() -> Self {
        unsupported_media_type()
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// A failure we cannot explain to the client: logged here, shown generically.
    pub fn internal(what: impl fmt::Display) -> Self {
        tracing::error!(error = %what, "internal error");
        Self::new(ErrorCode::Internal, INTERNAL_MESSAGE)
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds a response header (`Retry-After`, `WWW-Authenticate`, …).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The response body with the request id (what the client finally sees).
    pub fn body(&self, request_id: Option<&str>) -> Vec<u8> {
        let body = ErrorBody {
            error: ErrorFields {
                code: self.code,
                message: &self.message,
                details: self.details.as_ref(),
            },
            request_id,
        };
        serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"error body could not be encoded"}}"#.to_vec()
        })
    }

    /// The error a bare framework response with `status` stands for (404 from the
    /// router, 405 from a resource, anything else that carries no error of ours).
    pub fn from_status(status: StatusCode, method: &str, path: &str) -> Self {
        match status.as_u16() {
            400 => Self::invalid_argument("the request is malformed"),
            401 => Self::new(ErrorCode::Unauthenticated, "authentication required"),
            403 => Self::new(ErrorCode::PermissionDenied, "not allowed"),
            404 => Self::not_found(format!("no route for {method} {path}")),
            405 => Self::new(
                ErrorCode::Unimplemented,
                format!("method {method} is not allowed on {path}"),
            )
            .with_status(status),
            413 => payload_too_large(None),
            415 => unsupported_media_type(),
            429 => Self::new(ErrorCode::ResourceExhausted, "too many requests"),
            501 => Self::new(ErrorCode::Unimplemented, "not implemented"),
            503 => Self::unavailable("temporarily unavailable; try again shortly"),
            504 => Self::new(ErrorCode::DeadlineExceeded, "the request timed out"),
            402..=499 => Self::invalid_argument(
                status
                    .canonical_reason()
                    .unwrap_or("the request was refused"),
            )
            .with_status(status),
            _ => Self::internal(format!("bare {status} response for {method} {path}")),
        }
    }

    /// A failed call to `method` on the bus. Transport failures (nobody consuming, no
    /// reply in time, broker down) get a message that names the service but not the
    /// plumbing; the original is logged.
    pub fn from_call(method: &str, err: RpcError) -> Self {
        let service = method.split('.').next().unwrap_or(method);
        match err.code {
            ErrorCode::Unavailable => {
                tracing::warn!(method, error = %err.message, "rpc unavailable");
                Self::unavailable(format!(
                    "the {service} service is unavailable; try again shortly"
                ))
            }
            ErrorCode::DeadlineExceeded => {
                tracing::warn!(method, error = %err.message, "rpc deadline exceeded");
                Self::new(
                    ErrorCode::DeadlineExceeded,
                    format!("the {service} service did not answer in time"),
                )
            }
            _ => err.into(),
        }
    }
}

fn payload_too_large(limit: Option<usize>) -> ApiError {
    let message = match limit {
        Some(limit) => format!("the request body is larger than the limit of {limit} bytes"),
        None => "the request body is too large".to_owned(),
    };
    ApiError::invalid_argument(message).with_status(StatusCode::PAYLOAD_TOO_LARGE)
}

fn unsupported_media_type() -> ApiError {
    ApiError::invalid_argument("the request body must be JSON (Content-Type: application/json)")
        .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// An error reply of a service: its code and message are meant for the client,
/// except `internal`, which is logged and replaced. A `resource_exhausted` with
/// `details.retry_after_s` (a per-account throttle, a busy service) also gets
/// `Retry-After`.
impl From<RpcError> for ApiError {
    fn from(err: RpcError) -> Self {
        if err.code == ErrorCode::Internal {
            return ApiError::internal(err.message);
        }
        let headers = err
            .retry_after_s()
            .map(|s| (header::RETRY_AFTER, HeaderValue::from(s)))
            .into_iter()
            .collect();
        ApiError {
            code: err.code,
            message: err.message,
            details: err.details,
            status: None,
            headers,
            request_id: None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        })
    }

    /// The body without request id (unless set); the telemetry middleware re-renders
    /// it with one.
    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CONTENT_TYPE, "application/json"));
        for (name, value) in &self.headers {
            res.insert_header((name.clone(), value.clone()));
        }
        res.body(self.body(self.request_id.as_deref()))
    }
}

/// Error handler of `web::PayloadConfig` (raw bodies).
pub fn payload_error(err: PayloadError) -> ApiError {
    match err {
        PayloadError::Overflow => payload_too_large(None),
        other => ApiError::invalid_argument(format!("could not read the request body: {other}")),
    }
}

/// Error handler of `web::PathConfig`.
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    match err {
        PathError::Deserialize(e) => {
            ApiError::invalid_argument(format!("invalid path parameter: {e}"))
        }
        other => ApiError::invalid_argument(format!("invalid path parameter: {other}")),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(e: &ApiError, rid: Option<&str>) -> Value {
        serde_json::from_slice(&e.body(rid)).unwrap()
    }

    #[test]
    fn status_follows_the_code_table() {
        for code in ErrorCode::ALL {
            let e = ApiError::new(code, "x");
            assert_eq!(e.status_code().as_u16(), code.http_status());
        }
    }

    #[test]
    fn the_one_shape() {
        let e = ApiError::invalid_field("email", "bad email");
        assert_eq!(
            body(&e, Some("r1")),
            json!({"error": {"code": "invalid_argument", "message": "bad email",
                             "details": {"field": "email"}}, "request_id": "r1"})
        );
        let e = ApiError::not_found("nope");
        assert_eq!(
            body(&e, None),
            json!({"error": {"code": "not_found", "message": "nope"}, "request_id": null})
        );
    }

    #[test]
    fn internal_messages_never_reach_the_client() {
        let e: ApiError = RpcError::internal("db password wrong at 10.0.0.3").into();
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(!e.message.contains("10.0.0.3"));
        let e = ApiError::from_call(
            "users.get",
            RpcError::unavailable("cannot publish the request: IO error at amqp://..."),
        );
        assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.message.contains("amqp"), "{}", e.message);
        let e = ApiError::from_call("orders.get", RpcError::deadline_exceeded("x"));
        assert_eq!(e.status_code(), StatusCode::GATEWAY_TIMEOUT);
        assert!(e.message.contains("orders"));
    }

    #[test]
    fn service_errors_pass_through() {
        let e: ApiError = RpcError::already_exists("email taken")
            .with_details(json!({"field": "email"}))
            .into();
        assert_eq!(e.status_code(), StatusCode::CONFLICT);
        assert_eq!(e.message, "email taken");
        assert_eq!(e.details, Some(json!({"field": "email"})));
    }

    #[test]
    fn a_service_throttle_becomes_429_with_retry_after() {
        let e: ApiError = RpcError::resource_exhausted("too many failed attempts", 8).into();
        let res = e.error_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "8");
        assert_eq!(e.details, Some(json!({"retry_after_s": 8})));
        let e: ApiError = RpcError::not_found("x").into();
        assert!(
            e.error_response()
                .headers()
                .get(header::RETRY_AFTER)
                .is_none()
        );
    }

    #[test]
    fn http_only_statuses_keep_a_known_code() {
        let e = ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED, "DELETE", "/users/login");
        assert_eq!(
            (e.status_code().as_u16(), e.code),
            (405, ErrorCode::Unimplemented)
        );
        let e = ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE, "POST", "/orders");
        assert_eq!(
            (e.status_code().as_u16(), e.code),
            (413, ErrorCode::InvalidArgument)
        );
        let e = ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "POST", "/orders");
        assert_eq!(
            (e.status_code().as_u16(), e.code),
            (415, ErrorCode::InvalidArgument)
        );
    }
}
