//! A fresh PostgreSQL database per test, dropped when the test ends, and
//! [`TestService`]: a service started in process on one.

use crate::service::{Running, StartError};
use proto_msgs::CancellationToken;
use sea_orm::{ConnectionTrait, Database};
use std::future::Future;
use std::pin::Pin;

/// Server-level URL used to create and drop test databases
/// (`TEST_DATABASE_ADMIN_URL`, default the local server as `postgres`).
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own: `url` points at it; dropping the value drops it.
pub struct TestDb {
    pub url: String,
    pub name: String,
    admin: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let admin = admin_url();
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let db = Database::connect(admin.as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {admin}: {e}"));
        db.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database: {e}"));
        let _ = db.close().await;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        TestDb {
            url: format!("{base}/{name}"),
            name,
            admin,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(db) = Database::connect(admin.as_str()).await {
                    if let Err(e) = db
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                    {
                        eprintln!("could not drop test database {name}: {e}");
                    }
                    let _ = db.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// How a service starts: its crate's `start`, boxed so [`TestService`] can restart it.
pub type StartFn<C> =
    fn(C, CancellationToken) -> Pin<Box<dyn Future<Output = Result<Running, StartError>> + Send>>;

/// A service started in process on a database of its own (and a test's bus): what each
/// service's `testing::spawn` returns, so every test starts a service the same way.
/// Dropping it tells the service to stop without waiting (a failed test still stops
/// it before its queues are deleted); [`TestService::stop`] waits. The database is
/// dropped with it.
pub struct TestService<C: Clone> {
    pub config: C,
    pub db: TestDb,
    start: StartFn<C>,
    stop: CancellationToken,
    running: Option<Running>,
}

impl<C: Clone> TestService<C> {
    /// Starts the service with `config` (which points at `db`); panics saying why when
    /// it does not start.
    pub async fn start(config: C, db: TestDb, start: StartFn<C>) -> TestService<C> {
        let stop = CancellationToken::new();
        let running = start(config.clone(), stop.clone())
            .await
            .unwrap_or_else(|e| panic!("the service did not start: {e}"));
        TestService {
            config,
            db,
            start,
            stop,
            running: Some(running),
        }
    }

    /// The running service (its database pool, …).
    pub fn running(&self) -> &Running {
        self.running
            .as_ref()
            .expect("the service runs until stop or restart")
    }

    /// Stops the service gracefully and starts it again on the same database and bus
    /// after `adjust` had a go at its config.
    pub async fn restart_with(&mut self, adjust: impl FnOnce(&mut C)) {
        self.stop_running().await;
        adjust(&mut self.config);
        self.stop = CancellationToken::new();
        let running = (self.start)(self.config.clone(), self.stop.clone())
            .await
            .unwrap_or_else(|e| panic!("the service did not restart: {e}"));
        self.running = Some(running);
    }

    async fn stop_running(&mut self) {
        self.stop.cancel();
        if let Some(running) = self.running.take() {
            running.stopped().await;
        }
    }

    /// Stops the service gracefully (in-flight requests finish); the database goes
    /// with `self`.
    pub async fn stop(mut self) {
        self.stop_running().await;
    }
}

impl<C: Clone> Drop for TestService<C> {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
