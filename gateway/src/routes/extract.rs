//! Our JSON body and query extractors: they read into the contract types of proto-msgs
//! (so reading is validating) and report a bad field with its path, e.g.
//! `400 invalid_argument` with `details: {"field": "items[2].price"}`. Content type and
//! size are checked first: `415` and `413`, as the document says.

use crate::error::{ApiError, payload_error};
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

/// A JSON body read into `T` (`Content-Type: application/json` or `…+json`; at most
/// `BODY_LIMIT_BYTES`, through the app's `PayloadConfig`).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let body = Bytes::from_request(req, payload);
        Box::pin(async move {
            if !json {
                return Err(ApiError::unsupported_media_type());
            }
            let body = body.await.map_err(|e| match e.as_error::<PayloadError>() {
                Some(PayloadError::Overflow) => payload_error(PayloadError::Overflow),
                _ => ApiError::invalid_argument(format!("could not read the request body: {e}")),
            })?;
            json_body(&body).map(Json)
        })
    }
}

/// Whether the request says its body is JSON.
fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// `body` as `T` (a JSON object: serde would also read a struct from an array), or
/// the error naming the bad field.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid_argument(
            "invalid JSON body: it must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // The path names the value; a line and column add nothing to it.
        let text = inner.to_string();
        let message = match inner.classify() {
            serde_json::error::Category::Data => {
                let position = format!(" at line {} column {}", inner.line(), inner.column());
                text.strip_suffix(&position).unwrap_or(&text).to_owned()
            }
            _ => text,
        };
        invalid("invalid JSON body", &path, &message)
    })?;
    de.end()
        .map_err(|e| ApiError::invalid_argument(format!("invalid JSON body: {e}")))?;
    Ok(value)
}

/// The query string read into `T`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(query(req.query_string()).map(Query))
    }
}

/// `text` (a query string) as `T`, or the error naming the bad parameter.
pub fn query<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(text.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        invalid("invalid query string", &path, &e.into_inner().to_string())
    })
}

/// `invalid_argument`, with `details.field` when the error is about one field.
fn invalid(what: &str, path: &str, message: &str) -> ApiError {
    if path.is_empty() || path == "." {
        ApiError::invalid_argument(format!("{what}: {message}"))
    } else {
        ApiError::invalid_field(path, format!("{what}: {path}: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto_msgs::orders::{CreateOrderRequest, ListOrdersRequest};
    use serde_json::json;

    #[test]
    fn a_bad_field_is_named() {
        let body = br#"{"items": [{"sku": "X", "price": 1, "quantity": 1},
                                   {"sku": "Y", "price": "0.105", "quantity": 1}]}"#;
        let err = json_body::<CreateOrderRequest>(body).unwrap_err();
        assert_eq!(err.details, Some(json!({"field": "items[1].price"})));
        assert_eq!(
            err.message,
            "invalid JSON body: items[1].price: \"0.105\" has more than 2 decimal places"
        );
        let err = json_body::<CreateOrderRequest>(b"{}").unwrap_err();
        assert_eq!(err.details, None);
        assert!(
            err.message.contains("missing field `items`"),
            "{}",
            err.message
        );
        let err = json_body::<CreateOrderRequest>(b"{oops").unwrap_err();
        assert!(
            err.message.starts_with("invalid JSON body"),
            "{}",
            err.message
        );
        assert!(json_body::<CreateOrderRequest>(br#"{"items": []} x"#).is_err());
        let err = json_body::<proto_msgs::users::UpdateUserRequest>(b" [null, null]").unwrap_err();
        assert!(err.message.contains("JSON object"), "{}", err.message);
    }

    #[test]
    fn a_bad_parameter_is_named() {
        let q: ListOrdersRequest = query("status=shipped&limit=5").unwrap();
        assert_eq!(q.limit.map(|l| l.get()), Some(5));
        let err = query::<ListOrdersRequest>("limit=0").unwrap_err();
        assert_eq!(err.details, Some(json!({"field": "limit"})));
        let err = query::<ListOrdersRequest>("status=LOST").unwrap_err();
        assert_eq!(err.details, Some(json!({"field": "status"})));
        assert!(err.message.contains("PENDING"), "{}", err.message);
    }
}
