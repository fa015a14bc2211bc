//! [`Reads`]: the connection a service's hot reads run on, a few pooled connections
//! kept checked out between queries.
//!
//! Why: sqlx 0.9 pings every connection given back to its pool (`Floating::
//! return_to_pool` in sqlx-core's `pool/connection.rs`, one `Sync` round trip to the
//! server), with no setting to skip it. For a one-statement read that doubles the
//! round trips, the server's wake-ups and the service's socket calls: on `GET
//! /orders/{id}` it was the largest cost left that is ours to remove
//! (docs/BENCHMARKS.md). A connection kept here after a query that ran to its end is
//! in step with the server, so it needs no such ping; it goes back to the pool (ping
//! and all) only when it is not wanted here any more.
//!
//! The rules, those of the pool's own reuse:
//! - only a connection whose statement ran to its end, successfully, is kept; one whose
//!   query failed, or was abandoned (its future dropped mid-way), goes back to the pool,
//!   which pings it, and closes it if it is broken;
//! - a kept connection unused for longer than the pool's `ping_if_idle_for` goes back to
//!   the pool, which pings it before the next use, as it would have; so at most a few
//!   connections are kept while reads are frequent, and none once they stop;
//! - at most `keep` connections are kept, fewer than the pool's size: a kept connection
//!   goes from one read to the next without passing through the pool, whose waiters
//!   are served in turn only by the connections given back to it, so writes
//!   (transactions, the outbox relay) and reads that found none kept always have some;
//! - when the pool closes, every kept connection goes back to it (a close waits for
//!   them).

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::{self, PgPool, Postgres};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult,
    RuntimeErr, Statement,
};
use sea_query_sqlx::SqlxValues;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// A [`ConnectionTrait`] for reads (and single-statement writes outside a
/// transaction); transactions still begin on the [`DatabaseConnection`].
#[derive(Clone)]
pub struct Reads {
    shared: Arc<Shared>,
}

struct Shared {
    pool: PgPool,
    /// Kept connections waiting for the next read, the most recently used last.
    idle: Mutex<VecDeque<Kept>>,
    /// Connections in circulation: idle here, or running a read that took one from
    /// here. At most `keep`; the pool's other connections go back to it after each use
    /// and serve its waiters in turn.
    circulating: AtomicUsize,
    keep: usize,
    idle_for: Duration,
}

struct Kept {
    conn: PoolConnection<Postgres>,
    since: Instant,
}

/// A connection taken for one statement; `seat` when it is in circulation.
struct Taken<'a> {
    conn: PoolConnection<Postgres>,
    seat: Option<Seat<'a>>,
}

/// One place in the circulation, freed when dropped: a read that fails or is
/// abandoned gives its connection back to the pool, and its place with it.
struct Seat<'a>(&'a Shared);

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        self.0.circulating.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Reads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reads")
            .field("keep", &self.shared.keep)
            .field("idle_for", &self.shared.idle_for)
            .finish_non_exhaustive()
    }
}

impl Reads {
    /// Reads on `db`'s pool, keeping up to `keep` connections in circulation (at most
    /// one fewer than the pool's size), each for at most `idle_for` unused. Must be
    /// called within the tokio runtime.
    pub fn new(db: &DatabaseConnection, keep: usize, idle_for: Duration) -> Reads {
        let pool = db.get_postgres_connection_pool().clone();
        let size = usize::try_from(pool.options().get_max_connections()).unwrap_or(usize::MAX);
        let keep = keep.min(size.saturating_sub(1));
        let shared = Arc::new(Shared {
            pool: pool.clone(),
            idle: Mutex::new(VecDeque::with_capacity(keep)),
            circulating: AtomicUsize::new(0),
            keep,
            idle_for,
        });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        tokio::spawn(async move {
            pool.close_event().await;
            if let Some(shared) = weak.upgrade() {
                let all = std::mem::take(&mut *shared.lock());
                shared.circulating.fetch_sub(all.len(), Ordering::AcqRel);
                drop(all);
            }
        });
        Reads { shared }
    }

    /// Reads on `db`, opened with `config`: up to half the pool's connections in
    /// circulation, each kept for as long as the pool hands out a connection without a
    /// ping.
    pub fn for_pool(db: &DatabaseConnection, config: &super::DbConfig) -> Reads {
        let keep = usize::try_from(config.max_connections / 2).unwrap_or(usize::MAX);
        Reads::new(db, keep, config.ping_if_idle_for)
    }

    /// Connections kept idle right now (for tests).
    pub fn kept(&self) -> usize {
        self.shared.lock().len()
    }

    /// The most recently used kept connection, else one from the pool.
    async fn take(&self) -> Result<Taken<'_>, DbErr> {
        let (fresh, stale) = {
            let mut idle = self.shared.lock();
            let stale = self.shared.expire(&mut idle);
            (idle.pop_back(), stale)
        };
        // Back to the pool outside the lock (each drop spawns the pool's return task).
        drop(stale);
        match fresh {
            Some(kept) => Ok(Taken {
                conn: kept.conn,
                seat: Some(Seat(&self.shared)),
            }),
            None => {
                let conn = self.shared.pool.acquire().await.map_err(acquire_err)?;
                Ok(Taken { conn, seat: None })
            }
        }
    }

    /// Keeps the connection of a statement that ran to its end: one in circulation
    /// always, one from the pool if there is a free place, else it goes back.
    fn put(&self, taken: Taken<'_>) {
        let Taken { conn, seat } = taken;
        if self.shared.pool.is_closed() {
            return;
        }
        let seat = seat.or_else(|| {
            let shared = &*self.shared;
            shared
                .circulating
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < shared.keep).then_some(n + 1)
                })
                .ok()
                .map(|_| Seat(shared))
        });
        let Some(seat) = seat else {
            return;
        };
        let stale = {
            let mut idle = self.shared.lock();
            let stale = self.shared.expire(&mut idle);
            idle.push_back(Kept {
                conn,
                since: Instant::now(),
            });
            stale
        };
        // Its place now belongs to the kept connection (freed again by `expire` or
        // the pool's close).
        std::mem::forget(seat);
        drop(stale);
    }

    /// Runs one statement on a kept or pooled connection; only the connection of a
    /// statement that succeeded is kept. `make` says how sea-orm reports its failure.
    async fn with<T>(
        &self,
        stmt: &Statement,
        make: fn(RuntimeErr) -> DbErr,
        run: impl AsyncFnOnce(
            &mut PoolConnection<Postgres>,
            sqlx::query::Query<'_, Postgres, SqlxValues>,
        ) -> Result<T, sqlx::Error>,
    ) -> Result<T, DbErr> {
        let mut taken = self.take().await?;
        let values = stmt.values.clone().unwrap_or(sea_orm::Values(Vec::new()));
        let query = sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values));
        match run(&mut taken.conn, query).await {
            Ok(done) => {
                self.put(taken);
                Ok(done)
            }
            Err(err) => Err(make(RuntimeErr::SqlxError(Arc::new(err)))),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Kept>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes out the connections unused for longer than `idle_for` (the oldest are at
    /// the front) and frees their places, for the caller to give them back to the
    /// pool once the lock is released.
    fn expire(&self, idle: &mut VecDeque<Kept>) -> Vec<Kept> {
        let mut stale = Vec::new();
        while idle
            .front()
            .is_some_and(|k| k.since.elapsed() >= self.idle_for)
        {
            stale.extend(idle.pop_front());
        }
        self.circulating.fetch_sub(stale.len(), Ordering::AcqRel);
        stale
    }
}

/// A failed acquire, as sea-orm reports it.
fn acquire_err(err: sqlx::Error) -> DbErr {
    match err {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        other => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(other))),
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Reads {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.with(&stmt, DbErr::Exec, async |conn, query| {
            query.execute(&mut **conn).await
        })
        .await
        .map(ExecResult::from)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let stmt = Statement::from_string(DbBackend::Postgres, sql);
        self.with(&stmt, DbErr::Exec, async |conn, _| {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut **conn)
                .await
        })
        .await
        .map(ExecResult::from)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.with(&stmt, DbErr::Query, async |conn, query| {
            query.fetch_optional(&mut **conn).await
        })
        .await
        .map(|row| row.map(QueryResult::from))
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.with(&stmt, DbErr::Query, async |conn, query| {
            query.fetch_all(&mut **conn).await
        })
        .await
        .map(|rows| rows.into_iter().map(QueryResult::from).collect())
    }
}
