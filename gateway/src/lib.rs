//! # gateway: the one HTTP door of the shop
//!
//! Turns each REST call into exactly one RPC message on the bus and the reply into an
//! HTTP response. Holds no business data and no signing key.
//!
//! - [`config`]: settings from the environment (`Config::from_env`) or for tests.
//! - [`routes`]: one file per resource (`users`, `orders`, `health`, `metrics`); each
//!   handler calls the bus through [`routes::Bus`] and passes the reply data through.
//! - [`telemetry`]: outermost middleware — request id, trace context, span, metrics,
//!   access log, and the final rendering of every error in the one error shape.
//! - [`guard`]: which route needs a token and which rate-limit policy applies.
//! - [`auth`]: bearer tokens verified with user-svc's public keys (JWKS), refused
//!   when their session was revoked ([`revocations`]: learnt from the bus).
//! - [`limits`]: `governor` rate limiters with the IETF `RateLimit` headers.
//! - [`error`]: [`error::ApiError`], the single mapping of bus errors to HTTP.
//! - [`metrics`]: the gateway's Prometheus registry; [`openapi`]: `/openapi.json`, `/docs`.
//! - [`ops`]: who may read `/metrics*` and the detailed `/health/ready`.
//! - [`state`]: what handlers share (SIGTERM handling is `proc_kit::shutdown`).
//!
//! [`start`] binds and returns at once (the bus connects in the background: 503 until
//! it does); cancelling the shutdown token stops accepting, drains in-flight requests,
//! then closes the bus client.

pub mod auth;
pub mod config;
pub mod error;
pub mod guard;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod revocations;
pub mod routes;
pub mod state;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{Config, ConfigError, RateLimits};

use crate::auth::Verifier;
use crate::limits::Limits;
use crate::metrics::GatewayMetrics;
use crate::state::AppState;
use actix_cors::Cors;
use actix_web::http::{Method, header};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use proto_msgs::{Bus, CancellationToken, RpcClient, RpcClientConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often idle rate-limit keys are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("the HTTP server failed: {0}")]
    Server(std::io::Error),
}

/// A gateway that is listening.
pub struct Running {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    bus: Bus,
    rpc: RpcClient,
    server: JoinHandle<std::io::Result<()>>,
    background: CancellationToken,
    revocations: JoinHandle<Option<proto_msgs::events::RunningConsumer>>,
}

impl Running {
    /// Waits until the bus client is connected, at most `timeout` (tests use it so the
    /// first call does not race the connection).
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        self.rpc.wait_connected(timeout).await
    }

    /// Waits for the server to stop (after the shutdown token is cancelled: in-flight
    /// requests drained), then closes the bus client.
    pub async fn stopped(self) {
        let _ = self.finish().await;
    }

    async fn finish(self) -> Result<(), StartError> {
        let result = match self.server.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StartError::Server(e)),
            Err(e) => Err(StartError::Server(std::io::Error::other(e))),
        };
        self.background.cancel();
        if let Ok(Some(listener)) = self.revocations.await {
            listener.stopped().await;
        }
        self.rpc.close().await;
        self.bus.close().await;
        tracing::info!("gateway stopped");
        result
    }
}

/// Binds, starts the HTTP workers and the bus client, and returns at once.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, StartError> {
    let metrics = GatewayMetrics::new()?;
    if config.repliers.is_empty() {
        tracing::warn!(
            "reply origin check off: replies are taken from any broker account \
             (set RPC_REPLIERS when each process has an account of its own)"
        );
    }
    // One connection for the whole gateway: lapin gives each connection an I/O thread,
    // and every HTTP worker's calls share this one's wake-ups.
    let bus = Bus::start(config.bus.clone(), "gateway");
    let rpc = RpcClient::start(
        &bus,
        RpcClientConfig {
            default_timeout: config.rpc_timeout,
            connection_name: "gateway".to_owned(),
            repliers: config.repliers.clone(),
            observer: Some(metrics.clone()),
            ..Default::default()
        },
    );
    let verifier = match &config.jwks {
        Some(jwks) => Verifier::from_jwks(jwks, &config.jwt_issuer, &config.jwt_audience)
            .map_err(|e| StartError::Config(format!("JWT_PUBLIC_JWKS: {e}")))?,
        None => Verifier::from_bus(
            rpc.clone(),
            &config.jwt_issuer,
            &config.jwt_audience,
            config.jwks_refresh_min_interval,
            config.timeout_for(proto_msgs::users::methods::JWKS),
        ),
    };
    let verifier = std::sync::Arc::new(verifier);
    let openapi_json =
        openapi::document().map_err(|e| StartError::Config(format!("OpenAPI document: {e}")))?;
    let state = web::Data::new(AppState {
        limits: Limits::new(&config.rate_limits),
        config: config.clone(),
        rpc: rpc.clone(),
        verifier: verifier.clone(),
        metrics,
        openapi_json: openapi_json.into(),
    });

    let app_state = state.clone();
    let server = HttpServer::new(move || {
        let state = app_state.clone();
        let body_limit = state.config.body_limit;
        let cors_origins = state.config.cors_allowed_origins.clone();
        App::new()
            .app_data(state)
            .app_data(web::PayloadConfig::default().limit(body_limit))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .configure(routes::configure)
            .route(
                "/docs",
                web::get().to(|| async {
                    HttpResponse::PermanentRedirect()
                        .insert_header((header::LOCATION, "/docs/"))
                        .finish()
                }),
            )
            .service(openapi::swagger_ui())
            .default_service(web::to(routes::not_found))
            // Last wrapped runs first: telemetry sees everything, CORS answers
            // preflights before auth, the guard runs right before the routes.
            .wrap(from_fn(guard::guard))
            .wrap(Condition::new(
                !cors_origins.is_empty(),
                cors(&cors_origins),
            ))
            .wrap(from_fn(telemetry::telemetry))
    })
    .workers(config.workers)
    .shutdown_timeout(config.shutdown_timeout.as_secs())
    .disable_signals()
    .bind(config.addr)
    .map_err(|source| StartError::Bind {
        addr: config.addr,
        source,
    })?;
    // The internal listener: the same app, reached on a private address, where the
    // operational endpoints need no token.
    let server = match config.ops.internal {
        Some(internal) => server.bind(internal).map_err(|source| StartError::Bind {
            addr: internal,
            source,
        })?,
        None => server,
    };
    if config.ops.is_open() {
        tracing::warn!(
            "/metrics and the detailed /health/ready are open to everyone \
             (set METRICS_TOKEN or INTERNAL_ADDR)"
        );
    }
    let addr = server.addrs().first().copied().unwrap_or(config.addr);
    let server = server.run();
    let handle = server.handle();
    let server = tokio::spawn(server);
    tracing::info!(%addr, "gateway listening");

    let background = CancellationToken::new();
    let stop = shutdown.clone();
    let done = background.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = stop.cancelled() => {
                tracing::info!("shutdown: no new connections; draining in-flight requests");
                handle.stop(true).await;
            }
            _ = done.cancelled() => {}
        }
    });
    let revocations = revocations::start(
        &bus,
        rpc.clone(),
        verifier.clone(),
        config.timeout_for(proto_msgs::users::methods::REVOCATIONS),
        background.clone(),
    );
    if verifier.fetches_keys() {
        tokio::spawn(refresh_keys(
            verifier.clone(),
            config.jwks_max_age,
            background.clone(),
        ));
    }
    let prune = background.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    state.limits.retain_recent();
                    state.verifier.revoked.prune(chrono::Utc::now().timestamp());
                }
                _ = prune.cancelled() => return,
            }
        }
    });
    Ok(Running {
        addr,
        bus,
        rpc,
        server,
        background,
        revocations,
    })
}

/// Fetches the verification keys again every `every`, off the request path: requests
/// with a known key never wait for user-svc, however slow it is.
async fn refresh_keys(
    verifier: std::sync::Arc<Verifier>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = tick.tick() => verifier.refresh_keys(&proto_msgs::RequestContext::new()).await,
            _ = stop.cancelled() => return,
        }
    }
}

/// `start`, then wait for the shutdown token and a graceful stop: what `main` calls.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    let running = start(config, shutdown).await?;
    running.finish().await
}

/// CORS for browser clients from `origins` (`*`: any origin, without credentials).
fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::PATCH, Method::OPTIONS])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("x-idempotency-key"),
            header::HeaderName::from_static("traceparent"),
            header::HeaderName::from_static("tracestate"),
        ])
        .expose_headers([
            header::LOCATION,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            header::HeaderName::from_static("x-request-id"),
            limits::RATELIMIT,
            limits::RATELIMIT_POLICY,
            header::HeaderName::from_static(crate::routes::IDEMPOTENT_REPLAYED),
        ])
        .max_age(3600);
    for origin in origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}
