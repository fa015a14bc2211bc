//! One file per RPC method. Each `handle` takes the shared [`App`], the request
//! context (actor, trace, idempotency key) and the decoded body, and returns the
//! service's [`Error`](crate::error::Error); [`server`] maps it to the bus error once.

use crate::error::Error;
use proto_msgs::orders::{SERVICE, methods};
use proto_msgs::{RequestContext, RpcError, RpcServer, UseBus};
use sea_orm::DatabaseConnection;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use svc_kit::outbox::OutboxSignal;

pub mod catalog;
pub mod create;
pub mod get;
pub mod list;
pub mod update_status;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct App {
    pub db: DatabaseConnection,
    /// Single-statement reads (svc-kit's `Reads`); transactions begin on `db`.
    pub reads: svc_kit::db::Reads,
    /// Wakes the outbox relay after a commit that wrote an event.
    pub outbox: OutboxSignal,
}

/// The RPC server with every `orders.*` and `catalog.*` method registered.
pub fn server(bus: impl Into<UseBus>, app: Arc<App>) -> RpcServer {
    use proto_msgs::catalog::methods as products;
    let server = RpcServer::new(bus, SERVICE);
    let server = route(server, &app, methods::CREATE, create::handle);
    let server = route(server, &app, methods::GET, get::handle);
    let server = route(server, &app, methods::LIST, list::handle);
    let server = route(server, &app, methods::UPDATE_STATUS, update_status::handle);
    let server = route(server, &app, products::LIST, catalog::list::handle);
    let server = route(server, &app, products::GET, catalog::get::handle);
    let server = route(server, &app, products::CREATE, catalog::create::handle);
    let server = route(server, &app, products::UPDATE, catalog::update::handle);
    route(
        server,
        &app,
        products::ADJUST_STOCK,
        catalog::adjust_stock::handle,
    )
}

/// Registers `handler` for `method`, giving it the shared state and mapping its error.
fn route<Req, Resp, F, Fut>(
    server: RpcServer,
    app: &Arc<App>,
    method: &str,
    handler: F,
) -> RpcServer
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(Arc<App>, RequestContext, Req) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
{
    let app = app.clone();
    server.method(method, move |ctx: RequestContext, req: Req| {
        let app = app.clone();
        async move { handler(app, ctx, req).await.map_err(RpcError::from) }
    })
}
