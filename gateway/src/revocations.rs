//! How the gateway learns that sessions were revoked: `user.sessions_revoked` events
//! on a queue of its own (server-named, exclusive, gone with the connection), plus a
//! `users.revocations` snapshot each time that queue is (re)bound, so a gateway that
//! starts late or was cut off from the broker still refuses what was revoked
//! meanwhile. Both feed [`crate::auth::Revoked`].
//!
//! Until the first snapshot has arrived (user-svc down at start), only the events
//! seen so far are known; the snapshot is retried with backoff until it succeeds.

use crate::auth::Verifier;
use proto_msgs::events::RunningConsumer;
use proto_msgs::events::types::USER_SESSIONS_REVOKED;
use proto_msgs::users::{Empty, Revocations, SessionsRevoked, methods};
use proto_msgs::{Bus, CancellationToken, CloudEvent, EventConsumer, RequestContext, RpcClient};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// First and longest wait between two snapshot attempts.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Starts the listener; it runs until `shutdown`. Returns once consuming (or at once
/// if the broker is not reachable yet: it keeps trying in the background).
pub fn start(
    bus: &Bus,
    rpc: RpcClient,
    verifier: Arc<Verifier>,
    timeout: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<Option<RunningConsumer>> {
    let applied = verifier.clone();
    // The retry loop of the previous snapshot, stopped when a newer one starts.
    let current: Arc<Mutex<Option<CancellationToken>>> = Arc::default();
    let stop = shutdown.clone();
    let consumer = EventConsumer::listener(bus, "gateway revocations")
        .on(
            USER_SESSIONS_REVOKED,
            move |event: CloudEvent<SessionsRevoked>| {
                let verifier = applied.clone();
                async move {
                    tracing::info!(user_id = %event.data.user_id, sid = ?event.data.sid, "sessions revoked");
                    verifier.revoked.apply(&event.data);
                    Ok(())
                }
            },
        )
        .on_subscribed(move || {
            let mine = stop.child_token();
            if let Ok(mut slot) = current.lock()
                && let Some(previous) = slot.replace(mine.clone())
            {
                previous.cancel();
            }
            tokio::spawn(snapshot(rpc.clone(), verifier.clone(), timeout, mine));
        });
    tokio::spawn(async move {
        match consumer.start(shutdown).await {
            Ok(running) => Some(running),
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for session revocations");
                None
            }
        }
    })
}

/// Fetches `users.revocations` until it succeeds or `stop`.
async fn snapshot(
    rpc: RpcClient,
    verifier: Arc<Verifier>,
    timeout: Duration,
    stop: CancellationToken,
) {
    let mut delay = RETRY_FIRST;
    loop {
        let mut ctx = RequestContext::new();
        ctx.deadline = Some(SystemTime::now() + timeout);
        let fetched = tokio::select! {
            r = rpc.call::<_, Revocations>(methods::REVOCATIONS, &Empty {}, &ctx) => r,
            _ = stop.cancelled() => return,
        };
        match fetched {
            Ok(snapshot) => {
                verifier.revoked.apply_snapshot(&snapshot);
                let (users, sessions) = verifier.revoked.len();
                tracing::info!(users, sessions, "revocation snapshot loaded");
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "cannot fetch the revocation snapshot; will retry");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return,
        }
        delay = (delay * 2).min(RETRY_MAX);
    }
}
