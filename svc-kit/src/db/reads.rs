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
//! The rules:
//! - only a connection whose statement ran to its end, successfully, is kept; one whose
//!   query failed, or was abandoned (its future dropped mid-way), goes back to the pool,
//!   which pings it, and closes it if it is broken;
//! - at most `keep` connections are in circulation (kept, or running a read that took
//!   one from here), fewer than the pool's size; the others go back to the pool after
//!   each use and serve its waiters in turn, so writes (transactions, the outbox relay)
//!   always have `size - keep` connections to share;
//! - a read that finds none kept waits for the pool like any other caller;
//! - a kept connection unused for `idle_for` (the pool's `ping_if_idle_for`) goes back
//!   to the pool, which pings it before its next use as it would have, whether or not
//!   reads go on (a background task looks every `idle_for`): once reads stop, the pool
//!   has all its connections again;
//! - one that has been in circulation for the pool's `max_lifetime` goes back too, so
//!   the pool still recycles it;
//! - when the pool closes, every kept connection goes back to it (a close waits for
//!   them).

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::postgres::PgConnection;
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
    /// here (or was admitted into it). At most `keep`.
    circulating: AtomicUsize,
    keep: usize,
    idle_for: Duration,
    /// The pool's `max_lifetime`: how long a connection may stay in circulation.
    lifetime: Option<Duration>,
}

struct Kept {
    conn: PoolConnection<Postgres>,
    /// When it was last put back.
    since: Instant,
    /// When it entered the circulation.
    admitted: Instant,
}

/// A connection taken for one statement; `seat` when it is in circulation.
struct Taken<'a> {
    conn: PoolConnection<Postgres>,
    seat: Option<Seat<'a>>,
}

/// One place in the circulation, held by a connection that entered it at `admitted`;
/// freed when dropped: a read that fails or is abandoned gives its connection back to
/// the pool, and its place with it.
struct Seat<'a> {
    shared: &'a Shared,
    admitted: Instant,
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        self.shared.circulating.fetch_sub(1, Ordering::AcqRel);
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
    /// one fewer than the pool's size), each for at most `idle_for` unused. `idle_for`
    /// should be shorter than the watchdog's `dead_after` ([`Reads::for_pool`] sees to
    /// it). Must be called within the tokio runtime.
    pub fn new(db: &DatabaseConnection, keep: usize, idle_for: Duration) -> Reads {
        let pool = db.get_postgres_connection_pool().clone();
        let size = usize::try_from(pool.options().get_max_connections()).unwrap_or(usize::MAX);
        let keep = keep.min(size.saturating_sub(1));
        let lifetime = pool.options().get_max_lifetime();
        // Taken before the task, which holds no pool of its own: a pool dropped without
        // being closed is dropped.
        let closed = pool.close_event();
        let shared = Arc::new(Shared {
            pool,
            idle: Mutex::new(VecDeque::with_capacity(keep)),
            circulating: AtomicUsize::new(0),
            keep,
            idle_for,
            lifetime,
        });
        tokio::spawn(sweep(Arc::downgrade(&shared), closed));
        Reads { shared }
    }

    /// Reads on `db`, opened with `config`: up to half the pool's connections in
    /// circulation, each kept for as long as the pool hands out a connection without a
    /// ping.
    pub fn for_pool(db: &DatabaseConnection, config: &super::DbConfig) -> Reads {
        let keep = usize::try_from(config.max_connections / 2).unwrap_or(usize::MAX);
        Reads::new(db, keep, config.ping_if_idle_for.min(config.dead_after / 2))
    }

    /// Connections kept idle right now (for tests).
    pub fn kept(&self) -> usize {
        self.shared.lock().len()
    }

    /// The most recently used kept connection, else one from the pool.
    ///
    /// Not a race between the pool and a connection put back here: a pending
    /// `acquire` dropped once it has a connection in hand (pinging it, or opening one)
    /// makes the pool close that connection and open another, which under load turned
    /// into hundreds of new server processes a second. A read waiting for the pool
    /// gets a kept connection through the pool instead, once the sweep gives it back
    /// (within about twice `idle_for`, well inside the acquire timeout).
    async fn take(&self) -> Result<Taken<'_>, DbErr> {
        if let Some(taken) = self.shared.pop() {
            return Ok(taken);
        }
        let conn = self.shared.pool.acquire().await.map_err(acquire_err)?;
        Ok(Taken { conn, seat: None })
    }

    /// Keeps the connection of a statement that ran to its end: one in circulation
    /// unless its lifetime is up, one from the pool if there is a free place; else it
    /// goes back to the pool.
    fn put(&self, taken: Taken<'_>) {
        let Taken { conn, seat } = taken;
        let shared = &*self.shared;
        let seat = seat.or_else(|| {
            shared
                .circulating
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < shared.keep).then_some(n + 1)
                })
                .ok()
                .map(|_| Seat {
                    shared,
                    admitted: Instant::now(),
                })
        });
        let Some(seat) = seat else {
            return;
        };
        if shared
            .lifetime
            .is_some_and(|lifetime| seat.admitted.elapsed() >= lifetime)
        {
            return;
        }
        {
            // Stale ones are left to the next take and the sweep: not this hot path.
            let mut idle = shared.lock();
            // Under the lock: the close empties the set under it too, so a connection
            // put after that would be left behind and the close would wait for it.
            if shared.pool.is_closed() {
                drop(idle);
                return;
            }
            idle.push_back(Kept {
                conn,
                since: Instant::now(),
                admitted: seat.admitted,
            });
        }
        // Its place now belongs to the kept connection (freed again by `expire` or
        // the close).
        std::mem::forget(seat);
    }

    /// Runs one statement on a kept or pooled connection; only the connection of a
    /// statement that succeeded is kept. `make` says how sea-orm reports its failure.
    async fn with<T>(
        &self,
        make: fn(RuntimeErr) -> DbErr,
        run: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, DbErr> {
        let mut taken = self.take().await?;
        match run(&mut taken.conn).await {
            Ok(done) => {
                self.put(taken);
                Ok(done)
            }
            Err(err) => Err(make(RuntimeErr::SqlxError(Arc::new(err)))),
        }
    }
}

/// Gives back the kept connections unused for `idle_for`, every `idle_for`, and all
/// of them once the pool closes; ends then, or when the [`Reads`] are gone.
async fn sweep(shared: Weak<Shared>, closed: sqlx::pool::CloseEvent) {
    let Some(every) = shared.upgrade().map(|s| s.idle_for) else {
        return;
    };
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(closed);
    loop {
        tokio::select! {
            () = &mut closed => break,
            _ = tick.tick() => {
                let Some(shared) = shared.upgrade() else { return };
                let stale = shared.expire(&mut shared.lock());
                drop(stale);
            }
        }
    }
    if let Some(shared) = shared.upgrade() {
        let all = std::mem::take(&mut *shared.lock());
        shared.circulating.fetch_sub(all.len(), Ordering::AcqRel);
        drop(all);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Kept>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used kept connection, if any (the stale ones go back).
    fn pop(&self) -> Option<Taken<'_>> {
        let (fresh, stale) = {
            let mut idle = self.lock();
            let stale = self.expire(&mut idle);
            (idle.pop_back(), stale)
        };
        // Back to the pool outside the lock (each drop spawns the pool's return task).
        drop(stale);
        fresh.map(|kept| Taken {
            conn: kept.conn,
            seat: Some(Seat {
                shared: self,
                admitted: kept.admitted,
            }),
        })
    }

    /// Takes out the connections unused for `idle_for` (the oldest are at the front)
    /// and frees their places, for the caller to give them back to the pool once the
    /// lock is released.
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

/// sea-orm's statement as sqlx's query, its values bound the way sea-orm binds them.
fn query(stmt: &Statement) -> sqlx::query::Query<'_, Postgres, SqlxValues> {
    let values = stmt.values.clone().unwrap_or(sea_orm::Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
}

#[async_trait::async_trait]
impl ConnectionTrait for Reads {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.with(DbErr::Exec, async |conn| query(&stmt).execute(conn).await)
            .await
            .map(ExecResult::from)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.with(DbErr::Exec, async |conn| {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(conn).await
        })
        .await
        .map(ExecResult::from)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.with(DbErr::Query, async |conn| {
            query(&stmt).fetch_optional(conn).await
        })
        .await
        .map(|row| row.map(QueryResult::from))
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.with(DbErr::Query, async |conn| {
            query(&stmt).fetch_all(conn).await
        })
        .await
        .map(|rows| rows.into_iter().map(QueryResult::from).collect())
    }
}
