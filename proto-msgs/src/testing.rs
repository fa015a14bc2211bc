//! Test helpers: a topology of its own per test, deleted when the test ends.

use crate::config::{BusConfig, DEFAULT_AMQP_URL};
use crate::topology::Topology;
use std::sync::Mutex;

/// A unique name prefix on the shared broker, so tests run in parallel without
/// seeing each other's messages. Dropping it deletes what was declared under it.
pub struct TestBus {
    config: BusConfig,
    services: Mutex<Vec<String>>,
}

impl Default for TestBus {
    fn default() -> Self {
        Self::new()
    }
}

impl TestBus {
    /// A fresh prefix (`test-<12 hex>`); `users` and `orders` are cleaned up by default.
    pub fn new() -> Self {
        let url = std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.to_owned());
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("test-{}", &id[..12]);
        TestBus {
            config: BusConfig::new(url, Topology::new(prefix)),
            services: Mutex::new(vec!["users".into(), "orders".into()]),
        }
    }

    pub fn config(&self) -> BusConfig {
        self.config.clone()
    }

    /// A supervised connection under this test's prefix, named `name`.
    pub async fn bus(&self, name: &str) -> crate::Bus {
        crate::Bus::connect(self.config(), name)
            .await
            .expect("connect to the broker")
    }

    pub fn topology(&self) -> &Topology {
        &self.config.topology
    }

    /// Also delete the queues of `service` at the end of the test.
    pub fn track(&self, service: &str) -> &Self {
        if let Ok(mut s) = self.services.lock() {
            s.push(service.to_owned());
        }
        self
    }
}

/// The RabbitMQ management API (`RABBITMQ_MANAGEMENT_URL`, default
/// `http://guest:guest@127.0.0.1:15672`), for tests that make faults happen.
pub fn management_url() -> String {
    std::env::var("RABBITMQ_MANAGEMENT_URL")
        .unwrap_or_else(|_| "http://guest:guest@127.0.0.1:15672".to_owned())
}

impl TestBus {
    /// Force-closes every broker connection opened under this test's prefix, as a
    /// broker restart would, without disturbing other tests. Waits (up to 20 s) until
    /// at least `expected` such connections are visible, since the management API
    /// lists new connections with a delay.
    pub async fn drop_connections(&self, expected: usize) -> usize {
        let base = management_url();
        let http = reqwest::Client::new();
        let prefix = format!("{} ", self.config.topology.prefix());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let names: Vec<String> = match http.get(format!("{base}/api/connections")).send().await
            {
                Ok(resp) => resp
                    .json::<Vec<serde_json::Value>>()
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|c| {
                        c["client_properties"]["connection_name"]
                            .as_str()
                            .is_some_and(|n| n.starts_with(&prefix))
                    })
                    .filter_map(|c| c["name"].as_str().map(str::to_owned))
                    .collect(),
                Err(_) => Vec::new(),
            };
            if names.len() >= expected || std::time::Instant::now() > deadline {
                for name in &names {
                    let Ok(mut url) = reqwest::Url::parse(&format!("{base}/api/connections/"))
                    else {
                        continue;
                    };
                    if let Ok(mut segments) = url.path_segments_mut() {
                        segments.pop_if_empty().push(name);
                    }
                    let _ = http
                        .delete(url)
                        .header("X-Reason", "test: simulated broker failure")
                        .send()
                        .await;
                }
                return names.len();
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let config = self.config.clone();
        let services = self.services.lock().map(|s| s.clone()).unwrap_or_default();
        // Drop may run inside a runtime; do the async clean-up on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(conn) = config.connect("test clean-up").await else {
                    return;
                };
                if let Ok(channel) = conn.create_channel().await {
                    let names: Vec<&str> = services.iter().map(String::as_str).collect();
                    if let Err(err) = config.topology.delete_all(&channel, &names).await {
                        eprintln!("test clean-up of {}: {err}", config.topology.prefix());
                    }
                }
                crate::amqp::close(&conn).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// A broker account of a test's own, with every permission on the default vhost, made
/// through the management API and deleted on drop: for tests that need two publishers
/// the broker can tell apart (`user_id`).
pub struct TestAccount {
    pub name: String,
    pub password: String,
}

impl TestAccount {
    pub async fn create(role: &str) -> TestAccount {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let account = TestAccount {
            name: format!("test-{role}-{}", &id[..10]),
            password: format!("pw-{id}"),
        };
        let http = reqwest::Client::new();
        let base = management_url();
        let user = http
            .put(format!("{base}/api/users/{}", account.name))
            .json(&serde_json::json!({"password": account.password, "tags": ""}))
            .send()
            .await
            .expect("the management API");
        assert!(user.status().is_success(), "create user: {}", user.status());
        let perms = http
            .put(format!("{base}/api/permissions/%2F/{}", account.name))
            .json(&serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}))
            .send()
            .await
            .expect("the management API");
        assert!(
            perms.status().is_success(),
            "permissions: {}",
            perms.status()
        );
        account
    }

    /// `bus` as this account.
    pub fn bus(&self, bus: &BusConfig) -> BusConfig {
        let url = format!("amqp://{}:{}@127.0.0.1:5672/%2f", self.name, self.password);
        BusConfig::new(url, bus.topology.clone())
    }
}

impl Drop for TestAccount {
    fn drop(&mut self) {
        let url = format!("{}/api/users/{}", management_url(), self.name);
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async move {
                    let _ = reqwest::Client::new().delete(url).send().await;
                });
            }
        })
        .join();
    }
}

/// A TCP proxy that a test can cut and restore: the server behind it becomes
/// unreachable for whoever connects through it, and nobody else notices. Or freeze:
/// nothing is forwarded any more, but no socket is closed either, like a network path
/// that silently stops working.
pub struct TcpProxy {
    port: u16,
    upstream: String,
    state: std::sync::Arc<ProxyState>,
}

struct ProxyState {
    open: std::sync::atomic::AtomicBool,
    generation: tokio::sync::watch::Sender<u64>,
    /// New connections are accepted and then ignored.
    frozen: std::sync::atomic::AtomicBool,
    /// Bumped by a freeze: the connections forwarding until then stop, for good.
    freezes: tokio::sync::watch::Sender<u64>,
}

/// Bytes a proxy replaces on their way to the upstream server.
#[derive(Clone)]
struct Rewrite {
    from: Vec<u8>,
    to: Vec<u8>,
}

impl TcpProxy {
    /// Listens on a free local port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> TcpProxy {
        Self::start_with(upstream, None).await
    }

    /// A proxy that replaces every `from` its clients send by `to` (the same length, so
    /// a protocol's length prefixes stay true): how a test writes bytes its client
    /// library would refuse to send, e.g. AMQP short strings that are not UTF-8. A
    /// `from` split across two reads is missed; keep it short and the messages small.
    pub async fn start_rewriting(upstream: &str, from: &[u8], to: &[u8]) -> TcpProxy {
        assert_eq!(from.len(), to.len(), "a rewrite keeps the length");
        assert!(!from.is_empty());
        let rewrite = Rewrite {
            from: from.to_vec(),
            to: to.to_vec(),
        };
        Self::start_with(upstream, Some(rewrite)).await
    }

    async fn start_with(upstream: &str, rewrite: Option<Rewrite>) -> TcpProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port for the proxy");
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (freezes, _) = tokio::sync::watch::channel(0u64);
        let state = std::sync::Arc::new(ProxyState {
            open: std::sync::atomic::AtomicBool::new(true),
            generation,
            frozen: std::sync::atomic::AtomicBool::new(false),
            freezes,
        });
        let st = state.clone();
        let up = upstream.to_owned();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !st.open.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = st.generation.subscribe();
                let mut freeze = st.freezes.subscribe();
                if st.frozen.load(std::sync::atomic::Ordering::SeqCst) {
                    // Held open and never answered, until a cut.
                    tokio::spawn(async move {
                        let _ = cut.changed().await;
                        drop(inbound);
                    });
                    continue;
                }
                let up = up.clone();
                let rewrite = rewrite.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&up).await else {
                        return;
                    };
                    match rewrite {
                        None => tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = cut.changed() => {}
                            // Both sockets stay open and nothing moves any more, until a cut.
                            _ = freeze.changed() => { let _ = cut.changed().await; }
                        },
                        Some(rewrite) => {
                            let (mut from_client, mut to_client) = inbound.split();
                            let (mut from_server, mut to_server) = outbound.split();
                            let upstream = rewrite_copy(&mut from_client, &mut to_server, &rewrite);
                            tokio::select! {
                                _ = upstream => {}
                                _ = tokio::io::copy(&mut from_server, &mut to_client) => {}
                                _ = cut.changed() => {}
                                _ = freeze.changed() => { let _ = cut.changed().await; }
                            }
                        }
                    }
                });
            }
        });
        TcpProxy {
            port,
            upstream: upstream.to_owned(),
            state,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` of the proxy.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// `url` (which names the upstream's `host:port`) going through this proxy instead.
    pub fn via(&self, url: &str) -> String {
        let via = url.replacen(&self.upstream, &self.addr(), 1);
        assert_ne!(
            via, url,
            "{url} does not name the proxied server {}",
            self.upstream
        );
        via
    }

    /// Drops every proxied connection and refuses new ones.
    pub fn cut(&self) {
        self.state
            .open
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.state.generation.send_modify(|g| *g += 1);
    }

    /// Stops forwarding in both directions without closing anything: the connections
    /// open now stay frozen for good (until a [`cut`](Self::cut)), and new ones are
    /// accepted but never answered, until [`restore`](Self::restore).
    pub fn freeze(&self) {
        self.state
            .frozen
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.state.freezes.send_modify(|g| *g += 1);
    }

    /// Accepts and forwards new connections again (the frozen ones stay frozen).
    pub fn restore(&self) {
        self.state
            .frozen
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.state
            .open
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Copies `from` to `to`, replacing the rewrite's bytes in each chunk read.
async fn rewrite_copy<R, W>(from: &mut R, to: &mut W, rewrite: &Rewrite) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let chunk = &mut buf[..n];
        let mut at = 0;
        while let Some(found) = chunk[at..]
            .windows(rewrite.from.len())
            .position(|w| w == rewrite.from.as_slice())
        {
            let start = at + found;
            chunk[start..start + rewrite.to.len()].copy_from_slice(&rewrite.to);
            at = start + rewrite.to.len();
        }
        to.write_all(chunk).await?;
    }
}

/// A [`TcpProxy`] in front of the broker (`AMQP_PROXY_UPSTREAM`, default
/// 127.0.0.1:5672), to make it unreachable for one component.
pub struct BrokerProxy {
    proxy: TcpProxy,
}

impl BrokerProxy {
    pub async fn start() -> BrokerProxy {
        let upstream =
            std::env::var("AMQP_PROXY_UPSTREAM").unwrap_or_else(|_| "127.0.0.1:5672".to_owned());
        BrokerProxy {
            proxy: TcpProxy::start(&upstream).await,
        }
    }

    /// The AMQP URL that goes through this proxy.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.proxy.port())
    }

    /// A copy of `bus` that connects through this proxy.
    pub fn bus(&self, bus: &BusConfig) -> BusConfig {
        BusConfig::new(self.url(), bus.topology.clone())
    }

    pub fn cut(&self) {
        self.proxy.cut();
    }

    pub fn restore(&self) {
        self.proxy.restore();
    }

    pub fn upstream(&self) -> &str {
        self.proxy.upstream()
    }
}

/// A connection made with lapin, a client other than the one this crate uses: what
/// another team's integration test would open, so tests prove the wire, not the library.
/// Named like [`BusConfig::connect`] names its connections.
pub async fn lapin_connect(bus: &BusConfig, name: &str) -> lapin::Connection {
    let props = lapin::ConnectionProperties::default()
        .with_connection_name(bus.connection_name(name).into());
    lapin::Connection::connect(&bus.url, props)
        .await
        .expect("connect to the broker with lapin")
}

/// A header of a lapin message as text.
pub fn lapin_header_str(table: &lapin::types::FieldTable, name: &str) -> Option<String> {
    match table.inner().get(name)? {
        lapin::types::AMQPValue::LongString(s) => {
            Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
        }
        lapin::types::AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// A requester written the way another team's integration test would be: plain lapin,
/// no [`RpcClient`](crate::RpcClient), hand-written JSON, an exclusive reply queue.
pub struct RawRpc {
    connection: lapin::Connection,
    channel: lapin::Channel,
    reply_to: lapin::types::ShortString,
    replies: lapin::Consumer,
    exchange: String,
}

/// One reply as it came off the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct RawReply {
    pub correlation_id: Option<String>,
    /// The `x-request-id` header of the reply, if any.
    pub request_id: Option<String>,
    /// The `x-idempotent-replayed` header of the reply, if any.
    pub replayed: Option<String>,
    pub body: serde_json::Value,
}

impl RawRpc {
    pub async fn connect(bus: &BusConfig) -> RawRpc {
        use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
        use lapin::types::FieldTable;
        let connection = lapin_connect(bus, "raw requester").await;
        let channel = connection.create_channel().await.expect("open a channel");
        let reply_to = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare a reply queue")
            .name()
            .clone();
        let replies = channel
            .basic_consume(
                reply_to.clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consume the reply queue");
        RawRpc {
            connection,
            channel,
            reply_to,
            replies,
            exchange: bus.topology.rpc_exchange(),
        }
    }

    /// JSON request properties: `correlation_id` and string `headers`; `reply_to` is
    /// added by [`RawRpc::send`]. Add more with lapin's `with_*` (e.g. a message id).
    pub fn props(correlation_id: &str, headers: &[(&str, &str)]) -> lapin::BasicProperties {
        let mut table = lapin::types::FieldTable::default();
        for (name, value) in headers {
            table.insert(
                (*name).into(),
                lapin::types::AMQPValue::LongString((*value).into()),
            );
        }
        lapin::BasicProperties::default()
            .with_content_type("application/json".into())
            .with_correlation_id(correlation_id.into())
            .with_headers(table)
    }

    /// Publishes `body` to the `rpc` exchange with routing key `method`.
    pub async fn send(&self, method: &str, body: &[u8], props: lapin::BasicProperties) {
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                method.into(),
                lapin::options::BasicPublishOptions::default(),
                body,
                props.with_reply_to(self.reply_to.clone()),
            )
            .await
            .expect("publish the request");
    }

    /// The next reply (at most 30 s).
    pub async fn next_reply(&mut self) -> RawReply {
        use futures::StreamExt;
        let delivery =
            tokio::time::timeout(std::time::Duration::from_secs(30), self.replies.next())
                .await
                .expect("a reply within 30 s")
                .expect("the reply consumer is open")
                .expect("a reply delivery");
        let props = &delivery.properties;
        RawReply {
            correlation_id: props
                .correlation_id()
                .as_ref()
                .map(|c| c.as_str().to_owned()),
            request_id: props
                .headers()
                .as_ref()
                .and_then(|h| lapin_header_str(h, crate::context::headers::REQUEST_ID)),
            replayed: props
                .headers()
                .as_ref()
                .and_then(|h| lapin_header_str(h, crate::context::headers::REPLAYED)),
            body: serde_json::from_slice(&delivery.data).expect("a JSON reply"),
        }
    }

    /// [`RawRpc::send`] with [`RawRpc::props`], then [`RawRpc::next_reply`].
    pub async fn call(
        &mut self,
        method: &str,
        body: &[u8],
        correlation_id: &str,
        headers: &[(&str, &str)],
    ) -> RawReply {
        self.send(method, body, Self::props(correlation_id, headers))
            .await;
        self.next_reply().await
    }

    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}

/// A certificate authority of a test's own, with its certificate in a PEM file (what a
/// client is told to trust), deleted with the value.
pub struct TestCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    /// The CA certificate, PEM.
    pub pem_file: std::path::PathBuf,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "shop test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("a CA certificate");
        let pem_file = std::env::temp_dir().join(format!(
            "shop-test-ca-{}.pem",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&pem_file, cert.pem()).expect("write the CA file");
        TestCa {
            params,
            key,
            pem_file,
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1 signed by this CA, with its key.
    fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let key = rcgen::KeyPair::generate().expect("a server key");
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params
            .signed_by(&key, &issuer)
            .expect("a server certificate");
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("a server config");
        std::sync::Arc::new(config)
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pem_file);
    }
}

/// What a [`TlsProxy`] speaks before TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFlavour {
    /// TLS from the first byte (AMQPS).
    Direct,
    /// PostgreSQL's: the client asks with an `SSLRequest`, the server answers `S`, then
    /// TLS.
    Postgres,
}

/// A TLS terminator in front of a real server: clients talk TLS to it with a
/// certificate from `ca` for `localhost`, it talks plain TCP to `upstream`. How tests
/// prove `amqps://` and `sslmode=verify-full` against the real broker and database.
pub struct TlsProxy {
    port: u16,
}

impl TlsProxy {
    pub async fn start(upstream: &str, ca: &TestCa, flavour: TlsFlavour) -> TlsProxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port for the TLS proxy");
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config());
        let upstream = upstream.to_owned();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if flavour == TlsFlavour::Postgres {
                        // SSLRequest: length 8, code 80877103.
                        let mut request = [0u8; 8];
                        if inbound.read_exact(&mut request).await.is_err()
                            || request != [0, 0, 0, 8, 4, 210, 22, 47]
                            || inbound.write_all(b"S").await.is_err()
                        {
                            return;
                        }
                    }
                    let Ok(mut tls) = acceptor.accept(inbound).await else {
                        return;
                    };
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut outbound).await;
                });
            }
        });
        TlsProxy { port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A throwaway Ed25519 key that mints access tokens as user-svc does: the one test
/// signing key of the workspace (gateway tests serve its [`TestKey::jwks`] from a stub
/// `users.jwks`).
pub struct TestKey {
    pub kid: String,
    encoding: jsonwebtoken::EncodingKey,
    /// The public key, base64url (the JWK's `x`).
    pub x: String,
}

impl TestKey {
    pub fn new(kid: &str) -> TestKey {
        use base64::Engine;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("an Ed25519 key");
        TestKey {
            kid: kid.to_owned(),
            // PKCS#8, as jsonwebtoken's EdDSA signer reads it.
            encoding: jsonwebtoken::EncodingKey::from_ed_der(&key.serialize_der()),
            x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.public_key_raw()),
        }
    }

    /// The key set with this one key, as `users.jwks` answers.
    pub fn jwks_value(&self) -> serde_json::Value {
        serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": self.x,
                                     "kid": self.kid, "alg": "EdDSA", "use": "sig"}]})
    }

    pub fn jwks(&self) -> String {
        self.jwks_value().to_string()
    }

    /// `claims` signed, with this key's `kid` in the header.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign test claims")
    }

    /// A token for `sub` with `role`, valid for 10 minutes.
    pub fn token(&self, sub: uuid::Uuid, role: crate::Role) -> String {
        self.sign(&token_claims(sub, role, 600))
    }
}

/// Claims as user-svc issues them (default issuer and audience, a session id of their
/// own), expiring in `exp_in` seconds (negative: already expired).
pub fn token_claims(sub: uuid::Uuid, role: crate::Role, exp_in: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    serde_json::json!({"sub": sub.to_string(), "role": role, "sid": uuid::Uuid::new_v4(),
                       "iat": now, "exp": now + exp_in,
                       "iss": crate::users::DEFAULT_TOKEN_ISSUER,
                       "aud": crate::users::DEFAULT_TOKEN_AUDIENCE})
}
