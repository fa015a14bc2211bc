//! HTTP routes, one file per resource. Each business route makes exactly one RPC call
//! through [`Bus`] and passes the reply's `data` to the client as the bytes the
//! service sent (no decode and re-encode).

pub mod extract;
pub mod health;
pub mod metrics;
pub mod orders;
pub mod products;
pub mod users;

use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry::RequestMeta;
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Bytes};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse};
use proto_msgs::limits::{IDEMPOTENCY_KEY_MAX_LEN, check_idempotency_key, idempotency_key_pattern};
use proto_msgs::{Actor, Reply, RequestContext, RpcClient, RpcError};
use serde::Serialize;
use serde_json::value::RawValue;
use std::future::{Ready, ready};
use utoipa::IntoParams;
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

/// Registers every route (the docs page is added by `start`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/users/register").route(web::post().to(users::register)))
        .service(web::resource("/users/login").route(web::post().to(users::login)))
        .service(web::resource("/users/token/refresh").route(web::post().to(users::refresh)))
        .service(web::resource("/users/logout").route(web::post().to(users::logout)))
        .service(web::resource("/users/logout/all").route(web::post().to(users::logout_all)))
        .service(
            web::resource("/users/me")
                .route(web::get().to(users::me))
                .route(web::patch().to(users::update_me)),
        )
        .service(web::resource("/users/profile").route(web::get().to(users::profile)))
        .service(
            web::resource("/users/{id}")
                .route(web::get().to(users::get))
                .route(web::patch().to(users::admin_update)),
        )
        .service(
            web::resource("/orders")
                .route(web::post().to(orders::create))
                .route(web::get().to(orders::list)),
        )
        .service(
            web::resource("/orders/user/{user_id}").route(web::get().to(orders::list_for_user)),
        )
        .service(web::resource("/orders/{id}").route(web::get().to(orders::get)))
        .service(web::resource("/orders/{id}/status").route(web::patch().to(orders::update_status)))
        .service(
            web::resource("/products")
                .route(web::get().to(products::list))
                .route(web::post().to(products::create)),
        )
        .service(
            web::resource("/products/{id}")
                .route(web::get().to(products::get))
                .route(web::patch().to(products::update)),
        )
        .service(
            web::resource("/products/{id}/stock").route(web::post().to(products::adjust_stock)),
        )
        .service(web::resource("/health").route(web::get().to(health::live)))
        .service(web::resource("/health/ready").route(web::get().to(health::ready)))
        .service(web::resource("/metrics").route(web::get().to(metrics::gateway)))
        .service(web::resource("/metrics/users").route(web::get().to(metrics::users)))
        .service(web::resource("/metrics/orders").route(web::get().to(metrics::orders)))
        .service(web::resource("/openapi.json").route(web::get().to(openapi_json)));
}

async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi_json.clone())
}

/// Unknown routes: 404 in the error shape.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// The bus, as a handler sees it: the client plus this request's ids and, on a POST or
/// PATCH, its `Idempotency-Key`.
pub struct Bus {
    state: web::Data<AppState>,
    meta: RequestMeta,
    idempotency_key: Option<String>,
}

/// Response header of an answer the service replayed from its stored replies.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The `Idempotency-Key` header parameter of every POST and PATCH route, described with
/// the contract's rule.
pub struct IdempotencyKeyHeader;

impl IntoParams for IdempotencyKeyHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(idempotency_key_pattern()));
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(format!(
                    "1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters (also \
                     `X-Idempotency-Key`). A change retried with the same key is not made \
                     again: the answer is the first one, with `Idempotent-Replayed: true`; \
                     the same key with a different body is `409`."
                )))
                .schema(Some(schema))
                .build(),
        ]
    }
}

/// `Idempotency-Key` (or `X-Idempotency-Key`), checked with the contract's rule.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req
        .headers()
        .get("idempotency-key")
        .or_else(|| req.headers().get("x-idempotency-key"))
    else {
        return Ok(None);
    };
    let bad = |message: String| ApiError::invalid_field("Idempotency-Key", message);
    let key = value
        .to_str()
        .map_err(|_| bad("the idempotency key must be visible ASCII".to_owned()))?
        .trim();
    check_idempotency_key(key).map_err(bad)?;
    Ok(Some(key.to_owned()))
}

impl FromRequest for Bus {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let meta = req.extensions().get::<RequestMeta>().cloned();
        // Only changes take a key (GETs are safe to repeat anyway).
        let key = match *req.method() {
            Method::POST | Method::PATCH => idempotency_key(req),
            _ => Ok(None),
        };
        ready(match (state, meta, key) {
            (_, _, Err(err)) => Err(err),
            (Some(state), Some(meta), Ok(idempotency_key)) => Ok(Bus {
                state,
                meta,
                idempotency_key,
            }),
            _ => Err(ApiError::internal(
                "bus extractor used outside the gateway app",
            )),
        })
    }
}

impl Bus {
    /// True while the bus client is connected.
    pub fn is_connected(&self) -> bool {
        self.client().is_connected()
    }

    fn client(&self) -> &RpcClient {
        &self.state.rpc
    }

    /// This request's id.
    pub fn request_id(&self) -> &str {
        &self.meta.request_id
    }

    /// The context for a call to `method`: request id, child span, actor, deadline,
    /// and the request's idempotency key.
    pub fn context(&self, method: &str, actor: Option<Actor>) -> RequestContext {
        let mut ctx = self
            .meta
            .rpc_context(actor, self.state.config.timeout_for(method));
        ctx.idempotency_key = self.idempotency_key.clone();
        ctx
    }

    /// Calls `method` and returns the reply's `data`, or the service's error.
    pub async fn call<Req: Serialize + ?Sized>(
        &self,
        method: &str,
        req: &Req,
        ctx: &RequestContext,
    ) -> Result<Data, ApiError> {
        let body = serde_json::to_vec(req).map_err(ApiError::internal)?;
        let reply = self
            .client()
            .call_reply(method, body, ctx)
            .await
            .map_err(|e| ApiError::from_call(method, e))?;
        let mut data = data_of(reply.body).map_err(ApiError::from)?;
        data.replayed = reply.replayed;
        Ok(data)
    }
}

/// The `data` of a reply, as the JSON bytes the service wrote.
#[derive(Debug, Clone)]
pub struct Data {
    pub bytes: Bytes,
    /// The service answered with the stored reply of an earlier request with the same
    /// idempotency key: the answer carries `Idempotent-Replayed: true`.
    pub replayed: bool,
}

impl Data {
    /// `200 OK` with the data as body.
    pub fn ok(self) -> HttpResponse {
        self.respond(StatusCode::OK)
    }

    pub fn respond(self, status: StatusCode) -> HttpResponse {
        let mut res = HttpResponse::build(status);
        res.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
        if self.replayed {
            res.insert_header((IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")));
        }
        res.body(self.bytes)
    }

    /// Decodes the data (for the few routes that need a field of it).
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.bytes)
            .map_err(|e| ApiError::internal(format!("unexpected reply data: {e}")))
    }
}

/// Splits a reply body: `{"data": …}` gives the slice of the body that holds the
/// data (one validating scan, no copy), `{"error": …}` the service's error.
pub fn data_of(body: Vec<u8>) -> Result<Data, RpcError> {
    let range = match serde_json::from_slice::<Reply<&RawValue>>(&body) {
        Ok(Reply::Data(raw)) => {
            let text = raw.get();
            let start = text.as_ptr() as usize - body.as_ptr() as usize;
            start..start + text.len()
        }
        Ok(Reply::Error(err)) => return Err(err),
        Err(e) => {
            return Err(RpcError::internal(format!(
                "the service sent a reply we cannot read: {e}"
            )));
        }
    };
    Ok(Data {
        bytes: Bytes::from(body).slice(range),
        replayed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_sliced_out_of_the_reply() {
        let data = data_of(br#"{"data": {"id": 1, "s": "x\"y"}}"#.to_vec()).unwrap();
        assert_eq!(&data.bytes[..], br#"{"id": 1, "s": "x\"y"}"#);
        let data = data_of(br#"{"data":null}"#.to_vec()).unwrap();
        assert_eq!(&data.bytes[..], b"null");
        let err =
            data_of(br#"{"error":{"code":"not_found","message":"no"}}"#.to_vec()).unwrap_err();
        assert_eq!(err.code, proto_msgs::ErrorCode::NotFound);
        let err = data_of(b"not json".to_vec()).unwrap_err();
        assert_eq!(err.code, proto_msgs::ErrorCode::Internal);
        assert!(data_of(br#"{"data":1,"extra":2}"#.to_vec()).is_err());
    }

    #[test]
    fn idempotency_keys_are_checked() {
        use actix_web::test::TestRequest;
        let req = TestRequest::default()
            .insert_header(("Idempotency-Key", "abc-1"))
            .to_http_request();
        assert_eq!(idempotency_key(&req).unwrap().as_deref(), Some("abc-1"));
        let req = TestRequest::default()
            .insert_header(("X-Idempotency-Key", "k2"))
            .to_http_request();
        assert_eq!(idempotency_key(&req).unwrap().as_deref(), Some("k2"));
        let req = TestRequest::default()
            .insert_header(("Idempotency-Key", "a".repeat(201)))
            .to_http_request();
        assert!(idempotency_key(&req).is_err());
        assert_eq!(
            idempotency_key(&TestRequest::default().to_http_request()).unwrap(),
            None
        );
    }
}
