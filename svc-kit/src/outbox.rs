//! Transactional outbox: [`enqueue`] writes the event in the caller's transaction, so
//! it exists exactly when the change it describes does; [`OutboxRelay`] publishes
//! pending rows in order with publisher confirms and deletes them once confirmed.
//!
//! If the broker is down, the change still commits and the event waits in the table.
//! A crash between confirm and delete publishes an event twice; consumers drop the
//! second copy by event id (see [`crate::inbox`]).

use crate::entities::outbox;
use proto_msgs::events::publish::{EncodedEvent, Published};
use proto_msgs::{BusError, CancellationToken, CloudEvent, EventPublisher};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Writes `event` to the outbox using `conn` (normally the open transaction).
pub async fn enqueue<C: ConnectionTrait, T: Serialize>(
    conn: &C,
    event: &CloudEvent<T>,
) -> Result<(), DbErr> {
    let payload = serde_json::to_value(event).map_err(|e| DbErr::Json(e.to_string()))?;
    let row = outbox::ActiveModel {
        id: Set(event.id),
        event_type: Set(event.event_type.clone()),
        payload: Set(payload),
        traceparent: Set(event.traceparent.clone()),
        ..Default::default()
    };
    outbox::Entity::insert(row)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// A row claimed by the relay: what it needs to publish it, or to back it off.
#[derive(Debug, FromQueryResult)]
struct Claimed {
    seq: i64,
    attempts: i32,
    /// The CloudEvent as PostgreSQL prints it, published byte for byte.
    payload: String,
}

/// Wakes the relay right after a commit, instead of at its next poll.
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

/// Told about the relay's work (for metrics).
pub trait RelayObserver: Send + Sync + 'static {
    fn published(&self, event_type: &str);
    fn backlog(&self, pending: i64);
    fn failed(&self);
}

/// Why one relay pass did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox database error: {0}")]
    Db(#[from] DbErr),
    #[error("cannot publish events: {0}")]
    Bus(#[from] BusError),
    #[error("the broker did not confirm the events within {0:?}")]
    Timeout(Duration),
}

/// Longest wait for the broker to confirm one batch.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes the outbox. Several instances may run at once (rows are claimed with
/// `FOR UPDATE SKIP LOCKED`).
pub struct OutboxRelay {
    db: DatabaseConnection,
    publisher: EventPublisher,
    signal: OutboxSignal,
    batch: u64,
    poll: Duration,
    observer: Option<Arc<dyn RelayObserver>>,
}

impl OutboxRelay {
    /// `bus`: the service's shared [`proto_msgs::Bus`], or a `BusConfig` for a
    /// connection of the relay's own.
    pub fn new(
        db: DatabaseConnection,
        bus: impl Into<proto_msgs::UseBus>,
        service: &str,
        signal: OutboxSignal,
    ) -> Self {
        OutboxRelay {
            db,
            publisher: EventPublisher::new(bus, format!("{service} outbox-relay")),
            signal,
            batch: 100,
            poll: Duration::from_secs(1),
            observer: None,
        }
    }

    /// How often the table is checked when nobody signals (default 1 s).
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    pub fn observer(mut self, observer: Arc<dyn RelayObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Runs until `shutdown`, then makes one last attempt to flush what is pending.
    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move { self.run(shutdown).await })
    }

    async fn run(self, shutdown: CancellationToken) {
        let mut backoff = proto_msgs::config::Backoff::default();
        loop {
            if shutdown.is_cancelled() {
                let _ = tokio::time::timeout(Duration::from_secs(3), self.relay_once()).await;
                self.publisher.close().await;
                return;
            }
            match self.relay_once().await {
                Ok(n) => {
                    backoff = proto_msgs::config::Backoff::default();
                    if n as u64 == self.batch {
                        continue;
                    }
                }
                Err(err) => {
                    if let Some(o) = &self.observer {
                        o.failed();
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "outbox relay failed; events stay in the outbox");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    continue;
                }
            }
            if let Some(o) = &self.observer
                && let Ok(n) = self.pending().await
            {
                o.backlog(n);
            }
            tokio::select! {
                _ = self.signal.0.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    /// Number of events not yet published.
    pub async fn pending(&self) -> Result<i64, DbErr> {
        pending(&self.db).await
    }

    /// Publishes up to one batch; returns how many events went out.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let txn = self.db.begin().await?;
        // Another relay instance skips the rows this one holds (and vice versa).
        let rows = outbox::Entity::find()
            .select_only()
            .columns([outbox::Column::Seq, outbox::Column::Attempts])
            .expr_as(
                Func::cast_as(Expr::col(outbox::Column::Payload), "text"),
                "payload",
            )
            .filter(Expr::col(outbox::Column::NextAttemptAt).lte(Expr::current_timestamp()))
            .order_by_asc(outbox::Column::Seq)
            .limit(self.batch)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .into_model::<Claimed>()
            .all(&txn)
            .await?;
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(0);
        }
        // (seq, attempts) of each event sent; unreadable rows are dropped loudly (only we
        // write this table) rather than blocking every event behind them.
        let mut sent = Vec::with_capacity(rows.len());
        let mut dropped = Vec::new();
        let mut events = Vec::with_capacity(rows.len());
        let claimed = rows.len();
        for Claimed {
            seq,
            attempts,
            payload,
        } in rows
        {
            match serde_json::from_str::<CloudEvent<serde_json::Value>>(&payload) {
                Ok(event) => {
                    events.push(EncodedEvent::new(&event, payload.into_bytes()));
                    sent.push((seq, attempts));
                }
                Err(err) => {
                    tracing::error!(seq, error = %err, "unreadable outbox row: dropped");
                    dropped.push(seq);
                }
            }
        }
        // Bounded: a blocked broker (memory alarm) or a half-open connection must not
        // hold the rows' locks, a pooled connection and shutdown forever.
        let outcomes =
            tokio::time::timeout(PUBLISH_TIMEOUT, self.publisher.publish_encoded(&events))
                .await
                .map_err(|_| RelayError::Timeout(PUBLISH_TIMEOUT))??;
        let mut done = dropped;
        for (((seq, attempts), outcome), event) in sent.iter().zip(&outcomes).zip(&events) {
            match outcome {
                Published::Routed => done.push(*seq),
                Published::Unroutable => {
                    // No queue is bound for this type yet (its consumer has not started on
                    // this broker): keep it, and try again later, 1 s doubling to 60 s.
                    let delay = std::cmp::min(1i64 << (*attempts).clamp(0, 6), 60);
                    tracing::warn!(seq, event_type = %event.event_type, retry_in_s = delay, "no queue is bound for this event yet; it stays in the outbox");
                    // `now() + '<delay> seconds'::interval`: the server's clock, as
                    // `next_attempt_at <= now()` above.
                    let retry_in = Func::cast_as(Expr::val(format!("{delay} seconds")), "interval");
                    outbox::Entity::update_many()
                        .col_expr(
                            outbox::Column::Attempts,
                            Expr::col(outbox::Column::Attempts).add(1),
                        )
                        .col_expr(
                            outbox::Column::NextAttemptAt,
                            Expr::current_timestamp().add(retry_in),
                        )
                        .filter(outbox::Column::Seq.eq(*seq))
                        .exec(&txn)
                        .await?;
                }
            }
        }
        if !done.is_empty() {
            outbox::Entity::delete_many()
                .filter(outbox::Column::Seq.is_in(done))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        if let Some(o) = &self.observer {
            for (event, outcome) in events.iter().zip(&outcomes) {
                if *outcome == Published::Routed {
                    o.published(&event.event_type);
                }
            }
        }
        tracing::debug!(count = events.len(), "outbox pass done");
        Ok(claimed)
    }
}

/// Number of events waiting in the outbox of `db`.
pub async fn pending<C: ConnectionTrait>(db: &C) -> Result<i64, DbErr> {
    let n = outbox::Entity::find()
        .select_only()
        .column(outbox::Column::Seq)
        .count(db)
        .await?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}
