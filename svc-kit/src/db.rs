//! Database connection and error classification.
//!
//! [`connect`] opens the pool every service uses and starts its [`watchdog`] (sqlx
//! #4349, below); [`Reads`] runs single-statement reads on connections kept out of it; [`migrate`] runs a service's migrations once however many instances
//! start together; [`is_transient`], [`rpc_error`] and [`handler_error`] map database
//! failures to bus errors in one place.

mod reads;
mod watchdog;

pub use reads::Reads;

use proto_msgs::{HandlerError, RpcError};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr};
use std::time::Duration;

/// Pool settings of a service's database.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `DATABASE_URL`, e.g. `postgres://postgres@127.0.0.1:5432/users`.
    pub url: String,
    /// `DB_MAX_CONNECTIONS` (default 10).
    pub max_connections: u32,
    /// How long a query waits for a pooled connection before failing `unavailable`
    /// (`DB_ACQUIRE_TIMEOUT_MS`, default 3000): short, so an outage answers fast.
    pub acquire_timeout: Duration,
    /// A pooled connection used more recently than this is handed out without a ping
    /// (default 500 ms).
    pub ping_if_idle_for: Duration,
    /// The server ends any statement running longer (default 10 s): nothing the
    /// services ask takes that long, and an abandoned statement (its caller's deadline
    /// passed) must not keep a server process busy. Migrations run without it.
    pub statement_timeout: Duration,
    /// A connection that has waited this long for the server while the pool has no
    /// connection to spare is taken for silently dead, and its socket is shut down so
    /// that the pool can replace it (default 15 s; sqlx #4349, see [`connect`]).
    /// Longer than `statement_timeout`: by then the server has answered or cancelled
    /// whatever it was asked, so a connection still waiting would wait forever. (A
    /// transaction its caller leaves idle that long on an exhausted pool may be ended
    /// too.)
    pub dead_after: Duration,
}

impl DbConfig {
    pub fn new(url: impl Into<String>) -> Self {
        DbConfig {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            ping_if_idle_for: Duration::from_millis(500),
            statement_timeout: Duration::from_secs(10),
            dead_after: Duration::from_secs(15),
        }
    }
}

/// Opens a pool. Connections are made lazily after the first, so a database that
/// goes away later is noticed per query, not fatal.
///
/// With it runs a watchdog, until the pool is closed ([`DatabaseConnection::close`]):
/// sqlx waits without a timeout for the server's answer to the ping it sends on every
/// connection given back (sqlx #4349), so a connection whose network path goes silent
/// would hold its pool permit forever. When the pool has none to spare, the watchdog
/// shuts down the sockets that have waited for the server longer than `dead_after`;
/// sqlx then closes those connections and the pool replaces them (Linux; reasons and
/// bounds in `db/watchdog.rs`).
pub async fn connect(config: &DbConfig) -> Result<DatabaseConnection, DbErr> {
    if config.dead_after <= config.statement_timeout {
        return Err(DbErr::Custom(format!(
            "dead_after ({:?}) must be longer than statement_timeout ({:?})",
            config.dead_after, config.statement_timeout
        )));
    }
    let mut opts = ConnectOptions::new(explicit_tls(&config.url)?);
    opts.max_connections(config.max_connections)
        .min_connections(1)
        .acquire_timeout(config.acquire_timeout)
        .connect_timeout(config.acquire_timeout)
        // sqlx pings every connection it hands out: a whole extra round trip per query.
        // Only a connection idle for a while may have been dropped without our noticing
        // (HikariCP's `aliveBypassWindowMs` does the same, at 500 ms). sqlx also pings
        // every connection given back (one more round trip, off the caller's path),
        // which upstream offers no way to skip; that ping is what the watchdog bounds,
        // and what `Reads` (db/reads.rs) saves single-statement reads.
        .test_before_acquire_if_idle_for(config.ping_if_idle_for)
        .statement_timeout(config.statement_timeout)
        .sqlx_logging(false);
    let db = Database::connect(opts).await?;
    watchdog::spawn(db.get_postgres_connection_pool(), config.dead_after);
    Ok(db)
}

/// `url` with `sslmode=disable` unless it names an `sslmode`: TLS to the database is
/// asked for explicitly (`require` or `verify-full`), never picked up by sqlx's
/// default `prefer`, which encrypts without authenticating the server (so protects
/// from nothing) and, with sqlx 0.9's TLS stream, leaves a connection whose query was
/// given up waiting until the watchdog ends it (seen in `tests/pool.rs` against a
/// server with `ssl = on`; plain TCP recovers within the statement timeout).
fn explicit_tls(url: &str) -> Result<String, DbErr> {
    let mut parsed = url::Url::parse(url)
        .map_err(|e| DbErr::Custom(format!("DATABASE_URL is not a URL: {e}")))?;
    if parsed.query_pairs().any(|(k, _)| k == "sslmode") {
        return Ok(url.to_owned());
    }
    parsed.query_pairs_mut().append_pair("sslmode", "disable");
    Ok(parsed.into())
}

/// Key of the advisory lock taken while migrating (any constant: it only has to be
/// the same for every instance of a service, and each service has its own database).
const MIGRATION_LOCK: i64 = 0x5348_4f50_4d49_4752; // "SHOPMIGR"

/// Runs `M`'s pending migrations while holding a PostgreSQL advisory lock, so several
/// instances starting at once on a fresh database migrate it once instead of racing
/// (the loser used to exit with a duplicate-type error).
pub async fn migrate<M: sea_orm_migration::MigratorTrait>(
    db: &DatabaseConnection,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::{Func, Query};
    use sea_orm::{ConnectionTrait, TransactionTrait};
    // A migration may rightly wait on the server longer than `dead_after` (the lock
    // below, an index on a big table): the watchdog leaves it alone.
    let _migrating = watchdog::Migrating::start();
    let txn = db.begin().await?;
    // A migration may rightly take longer than any request. Raw: sea-query has no
    // `SET` statement.
    txn.execute_unprepared("SET LOCAL statement_timeout = 0")
        .await?;
    let lock = Query::select()
        .expr(Func::cust("pg_advisory_xact_lock").arg(MIGRATION_LOCK))
        .to_owned();
    txn.execute(&lock).await?;
    M::up(&txn, None).await?;
    txn.commit().await
}

/// True for failures that go away by themselves: the server is down, restarting,
/// refusing connections, or the pool could not hand out a connection in time.
pub fn is_transient(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as SqlxError;
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                SqlxError::Io(_)
                | SqlxError::PoolTimedOut
                | SqlxError::PoolClosed
                | SqlxError::WorkerCrashed
                | SqlxError::Protocol(_) => true,
                SqlxError::Database(db) => db.code().is_some_and(|code| {
                    // 08: connection exception; 57P0x: admin shutdown, crash shutdown,
                    // cannot connect now; 53300: too many connections.
                    code.starts_with("08") || code.starts_with("57P") || code == "53300"
                }),
                _ => false,
            }
        }
        DbErr::Exec(RuntimeErr::Internal(msg)) | DbErr::Query(RuntimeErr::Internal(msg)) => {
            msg.contains("connection") || msg.contains("closed")
        }
        _ => false,
    }
}

/// The bus error for a database failure: `unavailable` when it is transient,
/// otherwise `internal` (logged here, never shown to the caller in detail).
pub fn rpc_error(err: DbErr) -> RpcError {
    if is_transient(&err) {
        tracing::warn!(error = %err, "database unavailable");
        RpcError::unavailable("the service's database is unavailable; try again shortly")
    } else {
        tracing::error!(error = %err, "database error");
        RpcError::internal("the service failed to process the request")
    }
}

/// The event-handler error for a database failure: transient ones are retried for as
/// long as it takes (the event waits in the queue), others a bounded number of times.
pub fn handler_error(err: DbErr) -> HandlerError {
    if is_transient(&err) {
        HandlerError::Transient(err.to_string())
    } else {
        HandlerError::Failed(err.to_string())
    }
}

/// True when `err` is a unique-constraint violation (e.g. a duplicate email).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[cfg(test)]
mod tests {
    use super::explicit_tls;

    #[test]
    fn tls_is_asked_for_explicitly() {
        assert_eq!(
            explicit_tls("postgres://u:p@db:5432/shop").unwrap(),
            "postgres://u:p@db:5432/shop?sslmode=disable"
        );
        assert_eq!(
            explicit_tls("postgres://db/shop?application_name=x").unwrap(),
            "postgres://db/shop?application_name=x&sslmode=disable"
        );
        let verify = "postgres://db/shop?sslmode=verify-full&sslrootcert=/ca.pem";
        assert_eq!(explicit_tls(verify).unwrap(), verify);
        assert!(explicit_tls("not a url").is_err());
    }
}
