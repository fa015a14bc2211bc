//! Real processes for the fault tests: the three binaries of the dev build, each started
//! with a test's own bus prefix, databases, key file and port, and killed when dropped.
//!
//! - [`Proc`]: one child process with its log file; signals (`SIGTERM`, `SIGSTOP`, …);
//!   SIGKILLed and reaped on drop, its log printed when the test is failing.
//! - [`Stack`]: user-svc, order-svc (one or more instances) and the gateway on a
//!   [`TestBus`] with a [`TestDb`] per service, each waited on until it answers.
//! - Helpers: [`free_port`], [`eventually`], SQL on a service's database, queue depth,
//!   and `orders.create` straight over the bus ([`create_order`]).

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use proto_msgs::orders::Order;
use proto_msgs::testing::TestBus;
use proto_msgs::{Actor, RequestContext, Role, RpcClient, RpcClientConfig, RpcError};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use std::fs::OpenOptions;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};
use svc_kit::testing::TestDb;
use uuid::Uuid;

/// The administrator user-svc creates at start-up in every stack.
pub const ADMIN_EMAIL: &str = "admin@shop.test";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// How long a process may take to become ready (migrations included) on a busy box.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The workspace root (`system-tests/..`).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `CARGO_TARGET_DIR` (relative to the workspace) or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_dir().join(dir),
        None => workspace_dir().join("target"),
    }
}

/// Builds the three binaries once per test binary (cargo's lock is free while tests
/// run, so a nested build works) and returns the path of `name`.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .current_dir(workspace_dir())
            // The same command as `make test` and `make up`: built once, reused here.
            .args(["build", "--locked", "-q", "--workspace", "--bins"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of the binaries failed");
    });
    target_dir().join("debug").join(name)
}

/// A local port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// A directory of its own for one test (logs, key file), removed at the end.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let path = std::env::temp_dir().join(format!(
            "system-tests-{}",
            &Uuid::new_v4().simple().to_string()[..12]
        ));
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        Scratch { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One running binary. Killed (SIGKILL) and reaped on drop, even when the test panics;
/// its log is printed then, so a failing test shows what the process said.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `binary` of the dev build with exactly `env` (plus `PATH`), stdout and
    /// stderr appended to `<dir>/<name>.log`.
    pub fn spawn(name: &str, binary_name: &str, env: &[(String, String)], dir: &Path) -> Proc {
        let path = binary(binary_name);
        let log = dir.join(format!("{name}.log"));
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open a log file");
        let err = out.try_clone().expect("clone the log file handle");
        let child = Command::new(&path)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_BACKTRACE", "1")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        Proc {
            name: name.to_owned(),
            child,
            log,
            status: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, once the process has ended (it is reaped here).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.status = Some(status);
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Sends `signal` (a name `kill -s` knows: TERM, STOP, CONT, KILL) while running.
    pub fn signal(&mut self, signal: &str) {
        assert!(self.is_running(), "{} is not running", self.name);
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} {} failed", self.name);
    }

    pub fn terminate(&mut self) {
        self.signal("TERM");
    }

    pub fn freeze(&mut self) {
        self.signal("STOP");
    }

    pub fn thaw(&mut self) {
        self.signal("CONT");
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Waits up to `timeout` for the process to end.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON log lines (`LOG_FORMAT=json`), other lines skipped.
    pub fn log_events(&self) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// How many log lines have `fields.message` containing `message` and satisfy `also`.
    pub fn count_log(&self, message: &str, also: impl Fn(&Value) -> bool) -> usize {
        self.log_events()
            .iter()
            .filter(|e| {
                e["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(message))
            })
            .filter(|e| also(e))
            .count()
    }

    /// `rpc handled` lines of `method` (what this instance answered).
    pub fn handled(&self, method: &str) -> usize {
        self.count_log("rpc handled", |e| e["span"]["method"] == method)
    }

    /// Waits until a log line contains `needle`; panics (with the log) if the process
    /// exits or `timeout` passes first.
    pub async fn wait_for_log(&mut self, needle: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return;
            }
            if let Some(status) = self.exit_status() {
                panic!(
                    "{} exited ({status}) before logging {needle:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            if Instant::now() >= end {
                panic!(
                    "{} did not log {needle:?} within {timeout:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn print_log(&self) {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(300);
        eprintln!(
            "----- {} (pid {}, {}), last {} lines -----",
            self.name,
            self.pid(),
            self.log.display(),
            lines.len() - from
        );
        for line in &lines[from..] {
            let cut: String = line.chars().take(600).collect();
            eprintln!("{cut}");
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            self.print_log();
        }
    }
}

/// What to start, and per-process environment overrides.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub users: bool,
    /// Instances of order-svc started at once (more with [`Stack::spawn_orders`]).
    pub orders: usize,
    pub gateway: bool,
    /// order-svc reaches its database through this local port (a [`proto_msgs::testing::TcpProxy`]).
    pub orders_db_port: Option<u16>,
    pub users_env: Vec<(String, String)>,
    pub orders_env: Vec<(String, String)>,
    pub gateway_env: Vec<(String, String)>,
}

impl StackOptions {
    /// user-svc, one order-svc, the gateway.
    pub fn full() -> Self {
        StackOptions {
            users: true,
            orders: 1,
            gateway: true,
            orders_db_port: None,
            users_env: Vec::new(),
            orders_env: Vec::new(),
            gateway_env: Vec::new(),
        }
    }

    /// Both services, no gateway.
    pub fn services() -> Self {
        StackOptions {
            gateway: false,
            ..Self::full()
        }
    }

    /// `n` instances of order-svc and nothing else.
    pub fn orders_only(n: usize) -> Self {
        StackOptions {
            users: false,
            orders: n,
            gateway: false,
            ..Self::full()
        }
    }

    pub fn users_env(mut self, name: &str, value: impl ToString) -> Self {
        self.users_env.push((name.to_owned(), value.to_string()));
        self
    }

    pub fn orders_env(mut self, name: &str, value: impl ToString) -> Self {
        self.orders_env.push((name.to_owned(), value.to_string()));
        self
    }

    pub fn gateway_env(mut self, name: &str, value: impl ToString) -> Self {
        self.gateway_env.push((name.to_owned(), value.to_string()));
        self
    }
}

/// The system as processes, on a topology and databases of its own. Dropping it kills
/// the processes first, then deletes the databases and the topology.
pub struct Stack {
    pub gateway: Option<Proc>,
    pub orders: Vec<Proc>,
    pub users: Option<Proc>,
    /// A client on the test's bus (deadline 10 s unless the context says otherwise).
    pub rpc: RpcClient,
    pub http: reqwest::Client,
    /// `http://127.0.0.1:<port>` of the gateway (a port is reserved even without one).
    pub base: String,
    pub gateway_port: u16,
    pub users_db: TestDb,
    pub orders_db: TestDb,
    pub bus: TestBus,
    pub scratch: Scratch,
    opts: StackOptions,
    orders_spawned: usize,
}

impl Stack {
    /// Starts what `opts` asks for and waits until each part answers: a service its
    /// `<service>.sys.health`, the gateway `GET /health/ready` (or `/health` when a
    /// service is missing).
    pub async fn start(opts: StackOptions) -> Stack {
        let bus = TestBus::new();
        let (users_db, orders_db) = tokio::join!(TestDb::new(), TestDb::new());
        // Built before anything is timed.
        tokio::task::spawn_blocking(|| binary("gateway"))
            .await
            .expect("build");
        let rpc = RpcClient::connect(
            bus.config(),
            RpcClientConfig {
                default_timeout: Duration::from_secs(10),
                connection_name: "system-test".to_owned(),
                ..Default::default()
            },
        )
        .await
        .expect("connect the test's RPC client");
        let gateway_port = free_port();
        let mut stack = Stack {
            gateway: None,
            orders: Vec::new(),
            users: None,
            rpc,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            base: format!("http://127.0.0.1:{gateway_port}"),
            gateway_port,
            users_db,
            orders_db,
            bus,
            scratch: Scratch::new(),
            opts,
            orders_spawned: 0,
        };
        if stack.opts.users {
            let env = stack.users_env();
            stack.users = Some(Proc::spawn(
                "user-svc",
                "user-svc",
                &env,
                stack.scratch.path(),
            ));
        }
        if stack.opts.orders > 0 {
            stack.spawn_orders();
        }
        if let Some(users) = stack.users.as_mut() {
            users.wait_for_log("user-svc started", READY_TIMEOUT).await;
            wait_healthy(&stack.rpc, "users", users).await;
        }
        if stack.opts.orders > 0 {
            stack.wait_orders_started(0).await;
            wait_healthy(&stack.rpc, "orders", &mut stack.orders[0]).await;
        }
        // One after the other: instances that start together on a fresh database race
        // on the migrations and all but one fail to start (no lock around `Migrator::up`).
        for _ in 1..stack.opts.orders {
            let i = stack.spawn_orders();
            stack.wait_orders_started(i).await;
        }
        if stack.opts.gateway {
            stack.start_gateway().await;
        }
        stack
    }

    /// Environment of user-svc.
    pub fn users_env(&self) -> Vec<(String, String)> {
        let mut env = self.common_env(&self.users_db.url);
        env.extend(pairs(&[
            (
                "JWT_DEV_KEY_FILE",
                &self.scratch.path().join("key.pem").display().to_string(),
            ),
            ("BCRYPT_COST", "4"),
            ("ADMIN_EMAIL", ADMIN_EMAIL),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
        ]));
        env.extend(self.opts.users_env.iter().cloned());
        env
    }

    /// Environment of an order-svc instance.
    pub fn orders_env(&self) -> Vec<(String, String)> {
        let url = match self.opts.orders_db_port {
            Some(port) => via_port(&self.orders_db.url, port),
            None => self.orders_db.url.clone(),
        };
        let mut env = self.common_env(&url);
        // The demo catalog `make up` loads: the scenarios order from it.
        let seed = workspace_dir().join("deploy/catalog/demo.json");
        env.push(("CATALOG_SEED".to_owned(), seed.display().to_string()));
        env.extend(self.opts.orders_env.iter().cloned());
        env
    }

    /// Environment of the gateway.
    pub fn gateway_env(&self) -> Vec<(String, String)> {
        let mut env = self.bus_env();
        env.extend(pairs(&[
            ("GATEWAY_ADDR", &format!("127.0.0.1:{}", self.gateway_port)),
            ("HTTP_WORKERS", "2"),
            // 0 turns each rate-limit policy off.
            ("RATE_LIMIT_AUTH_PER_MIN", "0"),
            ("RATE_LIMIT_ANON_PER_MIN", "0"),
            ("RATE_LIMIT_USER_PER_MIN", "0"),
            ("SHUTDOWN_TIMEOUT_S", "30"),
        ]));
        env.extend(self.opts.gateway_env.iter().cloned());
        env
    }

    fn bus_env(&self) -> Vec<(String, String)> {
        pairs(&[
            ("AMQP_URL", &self.bus.config().url),
            ("BUS_PREFIX", self.bus.topology().prefix()),
            ("APP_ENV", "development"),
            ("LOG_FORMAT", "json"),
        ])
    }

    fn common_env(&self, database_url: &str) -> Vec<(String, String)> {
        let mut env = self.bus_env();
        env.push(("DATABASE_URL".to_owned(), database_url.to_owned()));
        env
    }

    /// Starts one more order-svc instance (same queue, database and prefix) and
    /// returns its index in `orders`; see [`Stack::wait_orders_started`].
    pub fn spawn_orders(&mut self) -> usize {
        self.orders_spawned += 1;
        let env = self.orders_env();
        let name = format!("order-svc-{}", self.orders_spawned);
        self.orders
            .push(Proc::spawn(&name, "order-svc", &env, self.scratch.path()));
        self.orders.len() - 1
    }

    /// Waits until instance `i` consumes its queue.
    pub async fn wait_orders_started(&mut self, i: usize) {
        self.orders[i]
            .wait_for_log("order-svc started", READY_TIMEOUT)
            .await;
    }

    /// Starts the gateway and waits until it is ready.
    pub async fn start_gateway(&mut self) {
        let env = self.gateway_env();
        let mut proc = Proc::spawn("gateway", "gateway", &env, self.scratch.path());
        let path = if self.opts.users && !self.orders.is_empty() {
            "/health/ready"
        } else {
            "/health"
        };
        let url = format!("{}{path}", self.base);
        let end = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(resp) = self.http.get(&url).send().await
                && resp.status().as_u16() == 200
            {
                break;
            }
            if let Some(status) = proc.exit_status() {
                panic!("the gateway exited ({status}):\n{}", proc.log());
            }
            assert!(
                Instant::now() < end,
                "the gateway was not ready within {READY_TIMEOUT:?}:\n{}",
                proc.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.gateway = Some(proc);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A direct connection to order-svc's database (never through a proxy).
    pub async fn orders_sql(&self) -> DatabaseConnection {
        connect(&self.orders_db.url).await
    }

    pub async fn users_sql(&self) -> DatabaseConnection {
        connect(&self.users_db.url).await
    }

    /// Messages ready in `queue` (a passive declare: unacked ones are not counted).
    pub async fn queue_ready(&self, queue: &str) -> u32 {
        let conn =
            proto_msgs::testing::lapin_connect(&self.bus.config(), "system-test probe").await;
        let channel = conn.create_channel().await.expect("channel");
        let count = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("queue {queue}: {e}"))
            .message_count();
        let _ = conn.close(200, "done".into()).await;
        count
    }

    /// `messages` (ready + unacknowledged) of `queue` as the management API reports
    /// it (its figures lag by a few seconds).
    pub async fn queue_messages(&self, queue: &str) -> Option<u64> {
        let mut url = reqwest::Url::parse(&format!(
            "{}/api/queues/",
            proto_msgs::testing::management_url()
        ))
        .ok()?;
        url.path_segments_mut()
            .ok()?
            .pop_if_empty()
            .push("/")
            .push(queue);
        let body: Value = self.http.get(url).send().await.ok()?.json().await.ok()?;
        body["messages"].as_u64()
    }

    /// Registers `email` through the gateway; returns the status and body.
    pub async fn register(&self, email: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url("/users/register"))
            .json(&json!({"email": email, "password": "password-123", "name": "Fault Test"}))
            .send()
            .await
            .expect("register");
        status_json(resp).await
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Processes first: a live service would declare its queues again after the
        // TestBus deletes them.
        if let Some(mut gw) = self.gateway.take() {
            gw.kill();
        }
        for p in &mut self.orders {
            p.kill();
        }
        if let Some(mut users) = self.users.take() {
            users.kill();
        }
    }
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `url` with its host and port replaced by `127.0.0.1:<port>`.
fn via_port(url: &str, port: u16) -> String {
    let mut u = reqwest::Url::parse(url).expect("a database URL");
    u.set_host(Some("127.0.0.1")).expect("set host");
    u.set_port(Some(port)).expect("set port");
    u.to_string()
}

/// `host:port` of the PostgreSQL server the test databases live on.
pub fn database_server() -> String {
    let u = reqwest::Url::parse(&svc_kit::testing::admin_url()).expect("admin URL");
    format!(
        "{}:{}",
        u.host_str().unwrap_or("127.0.0.1"),
        u.port().unwrap_or(5432)
    )
}

/// Calls `<service>.sys.health` until it answers `ok`.
async fn wait_healthy(rpc: &RpcClient, service: &str, proc: &mut Proc) {
    let method = format!("{service}.sys.health");
    let end = Instant::now() + READY_TIMEOUT;
    loop {
        let result: Result<Value, RpcError> = rpc
            .call(&method, &json!({}), &deadline_ctx(Duration::from_secs(3)))
            .await;
        match result {
            Ok(v) if v["status"] == "ok" => return,
            other => {
                if let Some(status) = proc.exit_status() {
                    panic!("{} exited ({status}):\n{}", proc.name(), proc.log());
                }
                assert!(
                    Instant::now() < end,
                    "{method} not ok within {READY_TIMEOUT:?} (last: {other:?}):\n{}",
                    proc.log()
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A context whose deadline is `timeout` from now.
pub fn deadline_ctx(timeout: Duration) -> RequestContext {
    let mut ctx = RequestContext::new();
    ctx.deadline = Some(SystemTime::now() + timeout);
    ctx
}

/// The order body every fault test sends: total 3.30.
pub fn order_items() -> Value {
    json!({"items": [{"sku": "WIDGET", "price": "1.50", "quantity": 2},
                     {"sku": "NUT", "price": "0.10", "quantity": 3}]})
}

/// `orders.create` straight over the bus, as `actor`, with an idempotency key.
pub async fn create_order(
    rpc: &RpcClient,
    actor: Uuid,
    key: &str,
    timeout: Duration,
) -> Result<Order, RpcError> {
    let ctx = deadline_ctx(timeout)
        .with_actor(Actor {
            id: actor,
            role: Role::User,
        })
        .with_idempotency_key(key)
        .with_request_id(format!("fault-{key}"));
    rpc.call(proto_msgs::orders::methods::CREATE, &order_items(), &ctx)
        .await
}

/// Polls `check` every 200 ms until it is true; panics after `timeout` with `what`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < end, "not within {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The status and JSON body of a response (`null` when the body is not JSON).
pub async fn status_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

pub async fn connect(url: &str) -> DatabaseConnection {
    Database::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// The first column of the first row of `sql`, as an integer (e.g. a `count(*)`).
pub async fn sql_i64(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"));
    row.try_get_by_index::<i64>(0)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The first column of every row of `sql`, as text (cast in the SQL: `id::text`).
pub async fn sql_strings(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| {
            row.try_get_by_index::<String>(0)
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
        .collect()
}

/// Pairs of text columns 0 and 1 of `sql`.
pub async fn sql_pairs(db: &DatabaseConnection, sql: &str) -> Vec<(String, String)> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| {
            (
                row.try_get_by_index::<String>(0)
                    .unwrap_or_else(|e| panic!("{sql}: {e}")),
                row.try_get_by_index::<String>(1)
                    .unwrap_or_else(|e| panic!("{sql}: {e}")),
            )
        })
        .collect()
}
