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
                let _ = conn.close(200, "done".into()).await;
            });
        });
        let _ = cleanup.join();
    }
}
