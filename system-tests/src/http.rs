//! HTTP scenarios against a running gateway: a user with orders, and the calls the
//! benchmark makes.

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// A registered, logged-in user of the system under test.
#[derive(Clone)]
pub struct Session {
    pub base: String,
    pub http: reqwest::Client,
    pub email: String,
    pub password: String,
    pub token: String,
}

impl Session {
    /// Registers a fresh user and logs in.
    pub async fn new(base: &str, http: reqwest::Client) -> anyhow::Result<Session> {
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "bench-password-1".to_owned();
        let resp = http
            .post(format!("{base}/users/register"))
            .json(&json!({"email": email, "password": password, "name": "Bench"}))
            .send()
            .await
            .context("register")?;
        if resp.status().as_u16() != 201 {
            bail!(
                "register answered {}: {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        let token = login(&http, base, &email, &password).await?;
        Ok(Session {
            base: base.to_owned(),
            http,
            email,
            password,
            token,
        })
    }

    pub async fn create_order(&self) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(format!("{}/orders", self.base))
            .bearer_auth(&self.token)
            .json(&order_body())
            .send()
            .await?;
        if resp.status().as_u16() != 201 {
            bail!("create order answered {}", resp.status());
        }
        let body: Value = resp.json().await?;
        body["id"].as_str().map(str::to_owned).context("order id")
    }
}

/// One unit of the demo catalog's `WIDGET`: every order of the contended-stock
/// scenario locks the same product row.
pub fn hot_order_body() -> Value {
    json!({"items": [{"sku": "WIDGET", "price": "1.50", "quantity": 1}]})
}

/// Two products of the demo catalog (`deploy/catalog/demo.json`).
pub fn order_body() -> Value {
    json!({"items": [{"sku": "BOOK-RUST", "price": 100, "quantity": 2}, {"sku": "NUT", "price": "0.10", "quantity": 3}]})
}

/// Logs in and returns the access token.
pub async fn login(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let resp = http
        .post(format!("{base}/users/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .context("login")?;
    if !resp.status().is_success() {
        bail!("login answered {}", resp.status());
    }
    let body: Value = resp.json().await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("access_token")
}

/// True when the response is a 2xx (its body is read, so the connection is reused).
pub async fn ok(resp: Result<reqwest::Response, reqwest::Error>) -> bool {
    match resp {
        Ok(r) => {
            let success = r.status().is_success();
            r.bytes().await.is_ok() && success
        }
        Err(_) => false,
    }
}

/// The seeds' checklist over HTTP: register → login → create an order → list → get →
/// the admin confirms it → the owner's profile shows it in `order_stats` (within 15 s:
/// the stats arrive through events). Returns the order.
pub async fn main_flow(
    http: &reqwest::Client,
    base: &str,
    admin_email: &str,
    admin_password: &str,
) -> anyhow::Result<Value> {
    let session = Session::new(base, http.clone()).await?;
    let resp = http
        .post(format!("{base}/orders"))
        .bearer_auth(&session.token)
        .json(&json!({"items": [{"sku": "BOOK-RUST", "price": 100, "quantity": 2}]}))
        .send()
        .await?;
    if resp.status().as_u16() != 201 {
        bail!("create order answered {}", resp.status());
    }
    let order: Value = resp.json().await?;
    if order["total"] != "200.00" || order["status"] != "PENDING" {
        bail!("unexpected order {order}");
    }
    let id = order["id"].as_str().context("order id")?.to_owned();
    let list: Value = http
        .get(format!("{base}/orders"))
        .bearer_auth(&session.token)
        .send()
        .await?
        .json()
        .await?;
    if list["orders"][0]["id"] != id.as_str() {
        bail!("the new order is not first in the list: {list}");
    }
    let got: Value = http
        .get(format!("{base}/orders/{id}"))
        .bearer_auth(&session.token)
        .send()
        .await?
        .json()
        .await?;
    if got["id"] != id.as_str() {
        bail!("get order answered {got}");
    }
    let admin = login(http, base, admin_email, admin_password).await?;
    let resp = http
        .patch(format!("{base}/orders/{id}/status"))
        .bearer_auth(&admin)
        .json(&json!({"status": "CONFIRMED"}))
        .send()
        .await?;
    if resp.status().as_u16() != 200 {
        bail!("admin confirm answered {}", resp.status());
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let me: Value = http
            .get(format!("{base}/users/me"))
            .bearer_auth(&session.token)
            .send()
            .await?
            .json()
            .await?;
        if me["order_stats"]["order_count"] == 1 && me["order_stats"]["total_spent"] == "200.00" {
            return Ok(got);
        }
        if std::time::Instant::now() > deadline {
            bail!("the profile never showed the order in order_stats: {me}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
