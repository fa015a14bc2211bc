//! One file per RPC method; [`rpc_server`] wires them to their method names.
//!
//! Handlers take the shared [`AppState`], the request context and the typed request,
//! and return `Result<_, Error>`; the conversion to a bus error happens once, here.

mod admin_update;
mod get;
mod jwks;
mod login;
mod logout;
mod logout_all;
mod me;
mod refresh;
mod register;
mod revocations;
mod update;

use crate::error::Error;
use crate::state::AppState;
use proto_msgs::users::{SERVICE, methods};
use proto_msgs::{RequestContext, RpcError, RpcServer, UseBus};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;

/// The RPC server with every `users.*` method.
pub fn rpc_server(bus: impl Into<UseBus>, state: &Arc<AppState>) -> RpcServer {
    RpcServer::new(bus, SERVICE)
        .method(methods::REGISTER, bind(state, register::handle))
        .method(methods::LOGIN, bind(state, login::handle))
        .method(methods::ME, bind(state, me::handle))
        .method(methods::GET, bind(state, get::handle))
        .method(methods::UPDATE, bind(state, update::handle))
        .method(methods::JWKS, bind(state, jwks::handle))
        .method(methods::REFRESH, bind(state, refresh::handle))
        .method(methods::LOGOUT, bind(state, logout::handle))
        .method(methods::LOGOUT_ALL, bind(state, logout_all::handle))
        .method(methods::ADMIN_UPDATE, bind(state, admin_update::handle))
        .method(methods::REVOCATIONS, bind(state, revocations::handle))
}

/// Gives a handler the state and maps its error to the bus error.
fn bind<Req, Resp, F, Fut>(
    state: &Arc<AppState>,
    handler: F,
) -> impl Fn(
    RequestContext,
    Req,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Resp, RpcError>> + Send>>
+ Send
+ Sync
+ 'static
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(Arc<AppState>, RequestContext, Req) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
{
    let state = state.clone();
    move |ctx, req| {
        let fut = handler(state.clone(), ctx, req);
        Box::pin(async move { fut.await.map_err(RpcError::from) })
    }
}
