//! `sslmode=require|verify-full` to PostgreSQL, through a TLS terminator in front of the
//! real server: verified against the CA the URL names, refused with another.

use proto_msgs::testing::{TestCa, TlsFlavour, TlsProxy};
use sea_orm::ConnectionTrait;
use svc_kit::db::{DbConfig, connect};
use svc_kit::testing::TestDb;

fn through(proxy: &TlsProxy, db: &TestDb, params: &str) -> DbConfig {
    let mut config = DbConfig::new(format!(
        "postgres://postgres@localhost:{}/{}?{params}",
        proxy.port(),
        db.name
    ));
    config.acquire_timeout = std::time::Duration::from_secs(3);
    config
}

#[tokio::test]
async fn verify_full_with_the_right_ca_works_and_another_ca_is_refused() {
    let db = TestDb::new().await;
    let ca = TestCa::new();
    let proxy = TlsProxy::start("127.0.0.1:5432", &ca, TlsFlavour::Postgres).await;

    let verified = format!("sslmode=verify-full&sslrootcert={}", ca.pem_file.display());
    let pool = connect(&through(&proxy, &db, &verified))
        .await
        .expect("a pool over verified TLS");
    pool.execute_unprepared("SELECT 1").await.expect("a query");
    let _ = pool.close().await;

    let pool = connect(&through(&proxy, &db, "sslmode=require"))
        .await
        .expect("a pool over TLS");
    pool.execute_unprepared("SELECT 1").await.expect("a query");
    let _ = pool.close().await;

    let other = TestCa::new();
    let wrong = format!(
        "sslmode=verify-full&sslrootcert={}",
        other.pem_file.display()
    );
    let err = connect(&through(&proxy, &db, &wrong))
        .await
        .expect_err("another CA is refused");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}
