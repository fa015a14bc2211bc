//! The pool hands out a connection it used moments ago without pinging it first
//! (`ping_if_idle_for`); sqlx pings each one it takes back, off the caller's path. These
//! tests show what that must not cost, on sqlx as published: when the server drops the
//! pool's connections, a hot pool fails one query per dead connection, each as a
//! transient error (`unavailable` to a caller), and then heals; a pool that sat idle
//! pings first and fails nothing; whatever a caller abandons midway (a transaction, a
//! query, a COPY) is settled before the connection is used again; an abandoned
//! statement doesn't outlive the statement timeout. And a connection whose network path
//! goes silent (sqlx #4349: the ping on release waits forever) doesn't take the pool
//! down for good: svc-kit's watchdog ends it. The same holds for `Reads`, the
//! connections kept between reads to skip that ping (at the end), which besides keep
//! no more than they may, so writes and other readers are never starved.
//!
//! Raw SQL throughout: these tests drive the server itself (`pg_sleep`,
//! `pg_terminate_backend`, `pg_stat_activity`), which no entity describes.

use proto_msgs::testing::TcpProxy;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbErr};
use std::time::Duration;
use svc_kit::db::{DbConfig, Reads, connect, is_transient};
use svc_kit::testing::{TestDb, admin_url};

const POOL: u32 = 3;

async fn pool(test_db: &TestDb) -> DatabaseConnection {
    pool_with(DbConfig::new(test_db.url.clone())).await
}

async fn pool_with(mut config: DbConfig) -> DatabaseConnection {
    config.max_connections = POOL;
    let db = connect(&config).await.expect("connect");
    all_at_once(&db).await;
    db
}

/// [`POOL`] queries at once, long enough for each to need a connection of its own:
/// every connection of the pool is open afterwards.
async fn all_at_once(db: &impl ConnectionTrait) {
    let together = (0..POOL).map(|_| select_sleep(db));
    for r in futures::future::join_all(together).await {
        r.expect("one of the queries at once");
    }
}

async fn select_one(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

async fn select_sleep(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT pg_sleep(0.05)")
        .await
        .map(|_| ())
}

/// Ends every server process serving `name`, as a database restart or an
/// administrator would; returns how many there were. (The call is in the select list,
/// not the filter: PostgreSQL may evaluate a filter's conditions in any order.)
async fn kill_connections(name: &str) -> u64 {
    let admin = Database::connect(admin_url().as_str())
        .await
        .expect("admin");
    let killed = admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .expect("terminate")
        .rows_affected();
    let _ = admin.close().await;
    killed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_pool_whose_connections_were_killed_fails_transiently_then_heals() {
    let test_db = TestDb::new().await;
    // However slow the machine, every connection counts as hot here: none is pinged.
    let mut config = DbConfig::new(test_db.url.clone());
    config.ping_if_idle_for = Duration::from_secs(600);
    let db = pool_with(config).await;
    let killed = kill_connections(&test_db.name).await;
    assert_eq!(killed, u64::from(POOL), "the pool had its connections open");
    fails_once_per_dead_connection_then_heals(&db).await;
    let _ = db.close().await;
}

/// Each of the [`POOL`] dead connections fails its one query, is found broken on the
/// way back to the pool and replaced: no second failure, and each failure is
/// transient (`unavailable` to a caller).
async fn fails_once_per_dead_connection_then_heals(db: &impl ConnectionTrait) {
    let mut failures = Vec::new();
    for _ in 0..(POOL * 2 + 2) {
        if let Err(err) = select_one(db).await {
            failures.push(err);
        }
    }
    assert_eq!(
        failures.len(),
        POOL as usize,
        "one failed query per dead connection: {failures:?}"
    );
    for err in &failures {
        assert!(
            is_transient(err),
            "a dead connection is a transient error: {err}"
        );
    }
    for i in 0..20 {
        select_one(db)
            .await
            .unwrap_or_else(|e| panic!("query {i} after healing: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_pool_pings_and_replaces_killed_connections_before_any_query_fails() {
    let test_db = TestDb::new().await;
    let db = pool(&test_db).await;
    assert!(kill_connections(&test_db.name).await >= 1);
    // Longer than the pool's ping-if-idle threshold (500 ms).
    tokio::time::sleep(Duration::from_millis(800)).await;
    for i in 0..(POOL * 2) {
        select_one(&db)
            .await
            .unwrap_or_else(|e| panic!("query {i} on a pool that was idle: {e}"));
    }
    let _ = db.close().await;
}

/// Server processes of database `name`, other than the one asking, for which `filter`
/// (a condition on `pg_stat_activity`, evaluated for each) is true.
async fn server_processes(name: &str, filter: &str) -> i64 {
    let admin = Database::connect(admin_url().as_str())
        .await
        .expect("admin");
    let row = admin
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT count(*) AS n FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid() AND {filter}"
            ),
        ))
        .await
        .expect("pg_stat_activity")
        .expect("a row");
    let _ = admin.close().await;
    row.try_get("", "n").expect("count")
}

/// Server processes of `name` in a transaction that nobody is using.
async fn idle_in_transaction(name: &str) -> i64 {
    server_processes(name, "state LIKE 'idle in transaction%'").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_dropped_without_commit_is_rolled_back_when_its_connection_is_given_back() {
    use sea_orm::TransactionTrait;
    let test_db = TestDb::new().await;
    let db = pool(&test_db).await;
    db.execute_unprepared("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .expect("create");
    {
        let txn = db.begin().await.expect("begin");
        txn.execute_unprepared("INSERT INTO t VALUES (1)")
            .await
            .expect("insert");
        // Dropped here: neither committed nor rolled back.
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while idle_in_transaction(&test_db.name).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped transaction still holds its connection open on the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Rolled back, not committed; and its row lock is gone, so this insert doesn't wait.
    let inserted = tokio::time::timeout(
        Duration::from_secs(5),
        db.execute_unprepared("INSERT INTO t VALUES (1)"),
    )
    .await
    .expect("no lock left behind")
    .expect("the first insert was rolled back");
    assert_eq!(inserted.rows_affected(), 1);
    let _ = db.close().await;
}

async fn one_connection(test_db: &TestDb, statement_timeout: Duration) -> DatabaseConnection {
    connections(test_db, 1, statement_timeout).await
}

async fn connections(test_db: &TestDb, n: u32, statement_timeout: Duration) -> DatabaseConnection {
    let mut config = DbConfig::new(test_db.url.clone());
    config.max_connections = n;
    config.statement_timeout = statement_timeout;
    connect(&config).await.expect("connect")
}

async fn scalar(db: &impl ConnectionTrait, sql: &str) -> Result<i64, DbErr> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            sql.to_owned(),
        ))
        .await?
        .ok_or_else(|| DbErr::Custom(format!("no row for {sql}")))?;
    row.try_get("", "n")
}

/// Five queries, each of which must get its own answer.
async fn answers_are_in_step(db: &impl ConnectionTrait) {
    for i in 0..5_i64 {
        let n = scalar(db, &format!("SELECT {i}::bigint AS n"))
            .await
            .unwrap_or_else(|e| panic!("query {i}: {e}"));
        assert_eq!(n, i, "query {i} got another query's answer");
    }
}

async fn backend(db: &impl ConnectionTrait) -> i64 {
    scalar(db, "SELECT pg_backend_pid()::bigint AS n")
        .await
        .expect("pid")
}

async fn give_up_on(db: &impl ConnectionTrait, sql: &str) {
    let gave_up =
        tokio::time::timeout(Duration::from_millis(200), db.execute_unprepared(sql)).await;
    assert!(gave_up.is_err(), "{sql} outlived its caller");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_given_up_midway_leave_their_connection_in_step() {
    let test_db = TestDb::new().await;
    let db = one_connection(&test_db, Duration::from_secs(10)).await;
    let pid = backend(&db).await;
    // The caller gives up (an RPC deadline) while the server is still working. The
    // connection is settled on its way back (sqlx's ping on release reads the answer it
    // owes first) and kept.
    give_up_on(&db, "SELECT pg_sleep(0.6)").await;
    answers_are_in_step(&db).await;
    assert_eq!(backend(&db).await, pid, "the same connection, settled");
    // The same for a query that fails after a while: the error it owes fails that
    // ping, which ends the connection, and a new one answers.
    give_up_on(&db, "SELECT 1 / length(pg_sleep(0.6)::text) AS n").await;
    answers_are_in_step(&db).await;
    let _ = db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_in_dropped_midway_leaves_the_pool_in_step() {
    #[allow(clippy::disallowed_methods)] // what this test is about
    async fn abandon_copy(db: &DatabaseConnection) {
        use sea_orm::sqlx::postgres::PgPoolCopyExt;
        let copy = db
            .get_postgres_connection_pool()
            .copy_in_raw("COPY t FROM STDIN")
            .await
            .expect("copy in");
        drop(copy);
    }
    let test_db = TestDb::new().await;
    let db = one_connection(&test_db, Duration::from_secs(10)).await;
    db.execute_unprepared("CREATE TABLE t (id INT)")
        .await
        .expect("create");
    abandon_copy(&db).await;
    answers_are_in_step(&db).await;
    let _ = db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_statement_ends_at_the_statement_timeout_and_frees_its_connection() {
    let test_db = TestDb::new().await;
    let db = one_connection(&test_db, Duration::from_secs(1)).await;
    give_up_on(&db, "SELECT pg_sleep(30)").await;
    // The server cancels it after 1 s, which ends the ping that sqlx sends on release
    // (it reads the cancellation), and the pool's one permit is free again. (Without a
    // statement timeout the pool's only connection would be gone for the whole 30 s.)
    let n = tokio::time::timeout(Duration::from_secs(5), scalar(&db, "SELECT 7::bigint AS n"))
        .await
        .expect("the connection came back within the statement timeout")
        .expect("query");
    assert_eq!(n, 7);
    let still_running = server_processes(
        &test_db.name,
        "state = 'active' AND query LIKE '%pg_sleep(30)%'",
    )
    .await;
    assert_eq!(still_running, 0, "nothing left running");
    let _ = db.close().await;
}

/// The server behind `proxy`: `url` with its host and port replaced.
fn through(proxy: &TcpProxy, url: &str) -> String {
    let upstream = proxy.upstream();
    let via = url.replacen(upstream, &format!("127.0.0.1:{}", proxy.port()), 1);
    assert_ne!(via, url, "{url} names its server as {upstream}");
    via
}

/// The `host:port` of the test server.
fn server() -> String {
    use sea_orm::sqlx::postgres::PgConnectOptions;
    let options: PgConnectOptions = admin_url().parse().expect("TEST_DATABASE_ADMIN_URL");
    format!("{}:{}", options.get_host(), options.get_port())
}

/// A pool of [`POOL`] connections through `proxy`, every one of them busy with queries
/// (on what `via` makes of the pool) whose callers give up after 300 ms (RPC deadlines),
/// when the proxy freezes: each connection is then stuck in a query or in the ping sqlx
/// sends on its release, and the callers all fail. Returns the pool and `via` once the
/// proxy forwards new connections again (the frozen ones stay frozen), with the load
/// still running until `stop`.
async fn frozen_under_load<C>(
    test_db: &TestDb,
    proxy: &TcpProxy,
    dead_after: Duration,
    stop: &proto_msgs::CancellationToken,
    via: impl FnOnce(&DatabaseConnection) -> C,
) -> (DatabaseConnection, C)
where
    C: ConnectionTrait + Clone + Send + 'static,
{
    let mut config = DbConfig::new(through(proxy, &test_db.url));
    config.acquire_timeout = Duration::from_secs(1);
    config.statement_timeout = Duration::from_secs(1);
    config.dead_after = dead_after;
    let pool = pool_with(config).await;
    let db = via(&pool);
    let served = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    for _ in 0..(POOL * 2) {
        let (db, stop, served) = (db.clone(), stop.clone(), served.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                match tokio::time::timeout(Duration::from_millis(300), select_one(&db)).await {
                    Ok(Ok(())) => {
                        served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = served.load(std::sync::atomic::Ordering::Relaxed);
    assert!(before > 0, "the pool served before the freeze");
    proxy.freeze();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = served.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert!(
        during <= u64::from(POOL),
        "{during} queries served through a frozen proxy"
    );
    let stuck = tokio::time::timeout(Duration::from_millis(1500), select_one(&db)).await;
    assert!(
        !matches!(stuck, Ok(Ok(()))),
        "a query got through while every connection was frozen"
    );
    proxy.restore();
    (pool, db)
}

/// Queries until one succeeds; returns how long that took, or `None` after `limit`.
async fn serves_within(db: &impl ConnectionTrait, limit: Duration) -> Option<Duration> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if let Ok(Ok(())) = tokio::time::timeout(Duration::from_millis(500), select_one(db)).await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_whose_connections_went_silent_serves_again_once_the_server_is_reachable() {
    let test_db = TestDb::new().await;
    let proxy = TcpProxy::start(&server()).await;
    let dead_after = Duration::from_secs(2);
    let stop = proto_msgs::CancellationToken::new();
    let (db, _) = frozen_under_load(&test_db, &proxy, dead_after, &stop, Clone::clone).await;
    // Each frozen connection is given up `dead_after` after its last answer (about when
    // the proxy froze, 3 s ago), at the watchdog's next look (every `dead_after / 4`),
    // and replaced through the proxy, which forwards new connections again.
    let took = serves_within(&db, Duration::from_secs(8))
        .await
        .expect("the pool serves again once the server is reachable");
    assert!(took < Duration::from_secs(5), "served again after {took:?}");
    stop.cancel();
    for i in 0..20 {
        select_one(&db)
            .await
            .unwrap_or_else(|e| panic!("query {i} after the pool recovered: {e}"));
    }
    let _ = db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_whose_connections_went_silent_still_closes() {
    let test_db = TestDb::new().await;
    let proxy = TcpProxy::start(&server()).await;
    let dead_after = Duration::from_secs(2);
    let stop = proto_msgs::CancellationToken::new();
    let (db, _) = frozen_under_load(&test_db, &proxy, dead_after, &stop, Clone::clone).await;
    stop.cancel();
    // Closing waits for every connection to come back, the frozen ones included (a
    // service's last step when it stops): they are given up `dead_after` after they
    // went silent, 3 s ago.
    tokio::time::timeout(Duration::from_secs(5), db.close())
        .await
        .expect("the pool closes")
        .expect("close");
}

/// What the tests above are about, shown on sqlx itself: with the watchdog out of the way
/// (a `dead_after` of an hour), the pool stays wedged though the server is reachable.
/// Should this start failing, sqlx bounds its release now (sqlx #4349): drop the
/// watchdog (svc-kit/src/db/watchdog.rs) and this test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_alone_leaves_a_pool_with_silent_connections_wedged() {
    let test_db = TestDb::new().await;
    let proxy = TcpProxy::start(&server()).await;
    let stop = proto_msgs::CancellationToken::new();
    let (db, _) = frozen_under_load(
        &test_db,
        &proxy,
        Duration::from_secs(3600),
        &stop,
        Clone::clone,
    )
    .await;
    assert_eq!(
        serves_within(&db, Duration::from_secs(4)).await,
        None,
        "sqlx gave the permits of frozen connections back by itself"
    );
    stop.cancel();
    // Not closed: closing waits for every permit.
}

// `Reads`: pooled connections kept between single-statement reads, so that they skip
// sqlx's ping on release. What holds for the pool above must hold for them too.

/// Reads on `db` keeping up to `keep` connections, each for at most `idle_for` unused.
fn reads(db: &DatabaseConnection, keep: usize, idle_for: Duration) -> Reads {
    Reads::new(db, keep, idle_for)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_run_on_one_kept_connection_and_keep_at_most_what_they_may() {
    let test_db = TestDb::new().await;
    let db = pool(&test_db).await;
    let mut config = DbConfig::new(test_db.url.clone());
    config.max_connections = POOL;
    // Kept however slow the machine.
    config.ping_if_idle_for = Duration::from_secs(600);
    let reads = Reads::for_pool(&db, &config);
    let pid = backend(&reads).await;
    assert_eq!(
        reads.kept(),
        1,
        "the connection of a read that ended is kept"
    );
    for _ in 0..5 {
        assert_eq!(backend(&reads).await, pid, "the next read reuses it");
    }
    // Three reads at once take three connections; half the pool (1 of 3) is kept.
    all_at_once(&reads).await;
    assert_eq!(reads.kept(), 1, "no more kept than half the pool");
    // Readers that never pause hand the kept connection on among themselves, but
    // writes and readers that found none kept still get the pool's others in turn.
    let stop = proto_msgs::CancellationToken::new();
    for _ in 0..(POOL * 2) {
        let (reads, stop) = (reads.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let _ = select_one(&reads).await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..5 {
        use sea_orm::TransactionTrait;
        let write = async {
            let txn = db.begin().await?;
            txn.execute_unprepared("SELECT 1").await?;
            txn.commit().await
        };
        tokio::time::timeout(Duration::from_secs(2), write)
            .await
            .unwrap_or_else(|_| panic!("transaction {i} waited for a connection"))
            .expect("transaction beside busy reads");
        tokio::time::timeout(Duration::from_secs(2), select_one(&reads))
            .await
            .unwrap_or_else(|_| panic!("read {i} waited for a connection"))
            .expect("one more read");
    }
    stop.cancel();
    answers_are_in_step(&reads).await;
    let _ = db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_connections_killed_by_the_server_fail_one_read_each_then_heal() {
    let test_db = TestDb::new().await;
    let mut config = DbConfig::new(test_db.url.clone());
    config.ping_if_idle_for = Duration::from_secs(600);
    let db = pool_with(config).await;
    // As many kept as may be (one fewer than the pool's size; the last one is idle in
    // the pool), and hot however slow the machine.
    let reads = reads(&db, POOL as usize, Duration::from_secs(600));
    all_at_once(&reads).await;
    assert_eq!(reads.kept(), POOL as usize - 1);
    assert_eq!(kill_connections(&test_db.name).await, u64::from(POOL));
    fails_once_per_dead_connection_then_heals(&reads).await;
    let _ = db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_connections_unused_for_a_while_go_back_to_the_pool_which_pings_them() {
    let test_db = TestDb::new().await;
    let db = pool(&test_db).await;
    // The pool's own threshold (500 ms): past it, a connection is pinged before use.
    let reads = reads(&db, POOL as usize, Duration::from_millis(500));
    all_at_once(&reads).await;
    assert!(kill_connections(&test_db.name).await >= 1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    for i in 0..(POOL * 2) {
        select_one(&reads)
            .await
            .unwrap_or_else(|e| panic!("read {i} after the kept ones went stale: {e}"));
    }
    assert_eq!(
        reads.kept(),
        1,
        "the stale ones went back; the one in use is kept"
    );
    let _ = db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_that_fail_or_are_given_up_are_not_kept_and_leave_nothing_out_of_step() {
    let test_db = TestDb::new().await;
    // Two connections, one of them kept.
    let db = connections(&test_db, 2, Duration::from_secs(10)).await;
    let reads = reads(&db, 1, Duration::from_secs(600));
    let pid = backend(&reads).await;
    assert_eq!(reads.kept(), 1);
    // A caller that gives up: its connection goes back to the pool, whose ping on
    // release reads the answer it owes; the next reads get the other one, in step.
    give_up_on(&reads, "SELECT pg_sleep(0.6)").await;
    assert_eq!(
        reads.kept(),
        0,
        "an abandoned read's connection is not kept"
    );
    answers_are_in_step(&reads).await;
    // The pool's one connection not in circulation is the abandoned one, back and
    // settled.
    assert_eq!(
        backend(&db).await,
        pid,
        "the abandoned one is back, settled"
    );
    answers_are_in_step(&reads).await;
    give_up_on(&reads, "SELECT 1 / length(pg_sleep(0.6)::text) AS n").await;
    answers_are_in_step(&reads).await;
    // A read that fails: not kept either, and the next one answers.
    let failed = scalar(&reads, "SELECT (1 / 0)::bigint AS n").await;
    assert!(failed.is_err(), "division by zero fails");
    assert_eq!(reads.kept(), 0, "a failed read's connection is not kept");
    answers_are_in_step(&reads).await;
    let _ = db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_given_up_ends_at_the_statement_timeout_and_frees_its_connection() {
    let test_db = TestDb::new().await;
    let db = connections(&test_db, 2, Duration::from_secs(1)).await;
    let reads = reads(&db, 1, Duration::from_secs(600));
    select_one(&reads).await.expect("a read, kept");
    give_up_on(&reads, "SELECT pg_sleep(30)").await;
    // Two reads at once need both connections, the abandoned one too: the server
    // cancels its statement after 1 s, which ends the ping on its release.
    let both = futures::future::join(
        scalar(&reads, "SELECT 7::bigint AS n, pg_sleep(0.2)"),
        scalar(&reads, "SELECT 7::bigint AS n, pg_sleep(0.2)"),
    );
    let (a, b) = tokio::time::timeout(Duration::from_secs(5), both)
        .await
        .expect("the connection came back within the statement timeout");
    assert_eq!((a.expect("read"), b.expect("read")), (7, 7));
    let _ = db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_with_kept_connections_still_closes() {
    let test_db = TestDb::new().await;
    let db = pool(&test_db).await;
    let reads = reads(&db, POOL as usize, Duration::from_secs(600));
    all_at_once(&reads).await;
    assert_eq!(reads.kept(), POOL as usize - 1);
    // A close waits for every connection: the kept ones are given back when it begins.
    tokio::time::timeout(Duration::from_secs(5), db.close())
        .await
        .expect("the pool closes")
        .expect("close");
    let after = select_one(&reads)
        .await
        .expect_err("a read after the close");
    assert!(
        is_transient(&after),
        "a closed pool is unavailable: {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_whose_connections_went_silent_serve_again_once_the_server_is_reachable() {
    let test_db = TestDb::new().await;
    let proxy = TcpProxy::start(&server()).await;
    let dead_after = Duration::from_secs(2);
    let stop = proto_msgs::CancellationToken::new();
    let (db, reads) = frozen_under_load(&test_db, &proxy, dead_after, &stop, |db| {
        reads(db, POOL as usize, Duration::from_secs(600))
    })
    .await;
    let took = serves_within(&reads, Duration::from_secs(8))
        .await
        .expect("reads serve again once the server is reachable");
    assert!(took < Duration::from_secs(5), "served again after {took:?}");
    stop.cancel();
    for i in 0..20 {
        select_one(&reads)
            .await
            .unwrap_or_else(|e| panic!("read {i} after recovering: {e}"));
    }
    tokio::time::timeout(Duration::from_secs(5), db.close())
        .await
        .expect("the pool closes")
        .expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_reads_stop_the_pool_has_all_its_connections_again() {
    use sea_orm::TransactionTrait;
    let test_db = TestDb::new().await;
    let db = pool(&test_db).await;
    let reads = reads(&db, POOL as usize, Duration::from_millis(300));
    all_at_once(&reads).await;
    assert_eq!(reads.kept(), POOL as usize - 1);
    // No read after these: the kept ones go back by themselves.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(reads.kept(), 0, "kept connections outlived the reads");
    // Every connection at once, for transactions (they would wait out the acquire
    // timeout, 3 s, if two were still kept).
    let writes = (0..POOL).map(|_| async {
        let txn = db.begin().await?;
        txn.execute_unprepared("SELECT pg_sleep(0.1)").await?;
        txn.commit().await
    });
    let all = tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(writes))
        .await
        .expect("every connection was free for the transactions");
    for r in all {
        r.expect("transaction");
    }
    let _ = db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_waiting_for_the_pool_gets_the_kept_connection_once_it_idles() {
    use sea_orm::TransactionTrait;
    let test_db = TestDb::new().await;
    let db = connections(&test_db, 2, Duration::from_secs(10)).await;
    let reads = reads(&db, 1, Duration::from_millis(300));
    select_one(&reads).await.expect("a read, kept");
    // The pool's other connection is busy with a transaction for a while.
    let txn = db.begin().await.expect("begin");
    let first = {
        let reads = reads.clone();
        tokio::spawn(
            async move { scalar(&reads, "SELECT 1::bigint AS n FROM pg_sleep(0.3)").await },
        )
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // None kept now, none in the pool: this one waits for the pool, and gets the
    // connection the first read puts back once it has idled there for 300 ms and gone
    // back to the pool, long before the transaction ends.
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(2), select_one(&reads))
        .await
        .expect("the waiting read took the connection put back")
        .expect("read");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(first.await.expect("first read").expect("first read"), 1);
    txn.commit().await.expect("commit");
    let _ = db.close().await;
}
