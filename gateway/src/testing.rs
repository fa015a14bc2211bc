//! For tests (feature `testing`): the gateway started in process on a test's bus, with
//! an HTTP client, and readers of its answers; the one way every test starts it.

use crate::Config;
use proto_msgs::CancellationToken;
use proto_msgs::testing::{TestBus, TestKey};
use serde_json::Value;
use std::time::Duration;

/// A running gateway and an HTTP client for it.
pub struct Gw {
    pub base: String,
    pub http: reqwest::Client,
    running: Option<crate::Running>,
    stop: CancellationToken,
}

impl Gw {
    pub async fn start(config: Config) -> Gw {
        let stop = CancellationToken::new();
        let running = crate::start(config, stop.clone())
            .await
            .unwrap_or_else(|e| panic!("the gateway did not start: {e}"));
        assert!(running.wait_connected(Duration::from_secs(20)).await);
        Gw {
            base: format!("http://{}", running.addr),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            running: Some(running),
            stop,
        }
    }

    /// A gateway with fixed verification keys (no `users.jwks` call needed).
    pub async fn with_key(bus: &TestBus, key: &TestKey) -> Gw {
        Self::start(Self::config(bus, key)).await
    }

    pub fn config(bus: &TestBus, key: &TestKey) -> Config {
        let mut config = Config::for_tests(bus.config());
        config.jwks = Some(key.jwks());
        config
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path))
    }

    /// The gateway's own `/metrics` text (Prometheus), read with no token: what the
    /// metrics tests sample.
    pub async fn metrics(&self) -> String {
        let res = self.get("/metrics").send().await.expect("GET /metrics");
        assert_eq!(res.status(), 200, "GET /metrics");
        res.text().await.expect("the /metrics body")
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path))
    }

    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.patch(self.url(path))
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(running) = self.running.take() {
            running.stopped().await;
        }
    }
}

/// Status and JSON body of a response.
pub async fn json_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, body)
}

/// Asserts the one error shape and returns the code.
pub fn error_code(body: &Value) -> String {
    assert!(body["error"]["message"].is_string(), "error shape: {body}");
    assert!(
        body["request_id"].is_string(),
        "request_id in error: {body}"
    );
    body["error"]["code"].as_str().unwrap().to_owned()
}

/// Parses Prometheus text: `(series with labels, value)` for each sample line.
pub fn prometheus_samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {l:?}"));
            (series.to_owned(), value)
        })
        .collect()
}

/// The value of the first sample whose series contains every fragment.
pub fn sample(text: &str, fragments: &[&str]) -> Option<f64> {
    prometheus_samples(text)
        .into_iter()
        .find(|(s, _)| fragments.iter().all(|f| s.contains(f)))
        .map(|(_, v)| v)
}
