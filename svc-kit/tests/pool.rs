//! The pool hands out a connection it used moments ago without pinging it first, and
//! takes one back without pinging it either unless something is left to send (vendored
//! sqlx-core): a query is one round trip instead of three. These tests show what that
//! must not cost: when the server drops the pool's connections, a hot pool fails one
//! query per dead connection, each as a transient error (`unavailable` to a caller),
//! and then heals; a pool that sat idle pings first and fails nothing; whatever a caller
//! abandons midway (a transaction, a query, a COPY) is settled before the connection is
//! used again; an abandoned statement doesn't outlive the statement timeout.

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbErr};
use std::time::Duration;
use svc_kit::db::{DbConfig, connect, is_transient};
use svc_kit::testing::{TestDb, admin_url};

const POOL: u32 = 3;

async fn pool(test_db: &TestDb) -> DatabaseConnection {
    pool_with(DbConfig::new(test_db.url.clone())).await
}

async fn pool_with(mut config: DbConfig) -> DatabaseConnection {
    config.max_connections = POOL;
    let db = connect(&config).await.expect("connect");
    // Open all of them: three queries at once need three connections.
    let warm = (0..POOL).map(|_| select_sleep(&db));
    for r in futures::future::join_all(warm).await {
        r.expect("warm-up query");
    }
    db
}

async fn select_one(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

async fn select_sleep(db: &DatabaseConnection) -> Result<(), DbErr> {
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

    let mut failures = Vec::new();
    for _ in 0..(POOL * 2 + 2) {
        if let Err(err) = select_one(&db).await {
            failures.push(err);
        }
    }
    // Each dead connection fails its one query, is found broken on the way back to the
    // pool and replaced: no second failure.
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
        select_one(&db)
            .await
            .unwrap_or_else(|e| panic!("query {i} after the pool healed: {e}"));
    }
    let _ = db.close().await;
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
    let mut config = DbConfig::new(test_db.url.clone());
    config.max_connections = 1;
    config.statement_timeout = statement_timeout;
    connect(&config).await.expect("connect")
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> Result<i64, DbErr> {
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
async fn answers_are_in_step(db: &DatabaseConnection) {
    for i in 0..5_i64 {
        let n = scalar(db, &format!("SELECT {i}::bigint AS n"))
            .await
            .unwrap_or_else(|e| panic!("query {i}: {e}"));
        assert_eq!(n, i, "query {i} got another query's answer");
    }
}

async fn backend(db: &DatabaseConnection) -> i64 {
    scalar(db, "SELECT pg_backend_pid()::bigint AS n")
        .await
        .expect("pid")
}

async fn give_up_on(db: &DatabaseConnection, sql: &str) {
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
    // connection is settled on its way back (the answer it owes is read) and kept.
    give_up_on(&db, "SELECT pg_sleep(0.6)").await;
    answers_are_in_step(&db).await;
    assert_eq!(backend(&db).await, pid, "the same connection, settled");
    // The same for a query that fails after a while: reading the error it owes ends
    // the connection (as upstream's ping did), and a new one answers.
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
    // The server cancels it after 1 s; the pool's one connection comes back settled.
    // (Without a statement timeout the pool would wait 15 s and then drop the
    // connection, leaving the statement running on the server.)
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
