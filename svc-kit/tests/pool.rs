//! The pool hands out a connection it used moments ago without pinging it first (a
//! whole round trip per query saved). These tests show what that must not cost: when
//! the server drops the pool's connections, a hot pool fails at most one query per
//! dead connection, each as a transient error (`unavailable` to a caller), and then
//! heals; a pool that sat idle pings first and fails nothing.

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbErr};
use std::time::Duration;
use svc_kit::db::{DbConfig, connect, is_transient};
use svc_kit::testing::{TestDb, admin_url};

const POOL: u32 = 3;

async fn pool(test_db: &TestDb) -> DatabaseConnection {
    let mut config = DbConfig::new(test_db.url.clone());
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
/// administrator would.
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
    let db = pool(&test_db).await;
    let killed = kill_connections(&test_db.name).await;
    assert!(killed >= 1, "the pool had connections to kill");

    let mut failures = Vec::new();
    for _ in 0..(POOL * 2 + 2) {
        if let Err(err) = select_one(&db).await {
            failures.push(err);
        }
    }
    eprintln!(
        "{} of the pool's {POOL} connections failed a query",
        failures.len()
    );
    assert!(
        failures.len() <= POOL as usize,
        "at most one failed query per dead connection, got {}: {failures:?}",
        failures.len()
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

/// Server processes of `name` in a transaction that nobody is using.
async fn idle_in_transaction(name: &str) -> i64 {
    let admin = Database::connect(admin_url().as_str())
        .await
        .expect("admin");
    let row = admin
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT count(*) AS n FROM pg_stat_activity \
                 WHERE datname = '{name}' AND state LIKE 'idle in transaction%'"
            ),
        ))
        .await
        .expect("pg_stat_activity")
        .expect("a row");
    let _ = admin.close().await;
    row.try_get("", "n").expect("count")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_given_up_midway_leaves_its_connection_usable() {
    let test_db = TestDb::new().await;
    let mut config = DbConfig::new(test_db.url.clone());
    config.max_connections = 1;
    let db = connect(&config).await.expect("connect");
    // The caller gives up (an RPC deadline) while the server is still working.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        db.execute_unprepared("SELECT pg_sleep(0.3)"),
    )
    .await;
    assert!(gave_up.is_err(), "the query outlived its caller");
    // The pool's only connection still owes that query's answer: the next query must
    // get its own result, not the abandoned one's.
    for i in 0..5_i64 {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!("SELECT {i}::bigint AS n"),
            ))
            .await
            .unwrap_or_else(|e| panic!("query {i} after the abandoned one: {e}"))
            .expect("a row");
        assert_eq!(row.try_get::<i64>("", "n").expect("n"), i);
    }
    let _ = db.close().await;
}
