//! What every handler and middleware shares: settings, the bus client, the token
//! verifier, the rate limiters, the metrics and the pre-rendered OpenAPI document.

use crate::auth::Verifier;
use crate::config::Config;
use crate::limits::Limits;
use crate::metrics::GatewayMetrics;
use actix_web::web::Bytes;
use proto_msgs::RpcClient;
use std::sync::Arc;

/// Shared by all workers (behind `web::Data`).
pub struct AppState {
    pub config: Config,
    /// The bus client: every request's call, and the token keys.
    pub rpc: RpcClient,
    pub verifier: Arc<Verifier>,
    pub limits: Limits,
    pub metrics: Arc<GatewayMetrics>,
    /// `/openapi.json`, rendered once at start-up.
    pub openapi_json: Bytes,
}
