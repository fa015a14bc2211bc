//! The AMQP client underneath this crate: [amqprs](https://docs.rs/amqprs), which runs its
//! socket reader and writer as tokio tasks. (lapin, used before, runs one OS thread per
//! connection; every frame then crosses threads, and that hand-off was the largest cost
//! left in the request path: see docs/BENCHMARKS.md.)
//!
//! What the rest of the crate needs from it lives here: connecting from an `amqp://`
//! URL, a received [`Delivery`], header helpers, and [`ChannelEvents`], the callbacks
//! that turn returned messages, publisher confirms and server-side channel closes into
//! values a task can await.

use crate::error::BusError;
use amqprs::callbacks::{ChannelCallback, ConnectionCallback};
use amqprs::channel::{Channel, ConsumerMessage, QueueDeclareArguments};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{Ack, BasicProperties, Cancel, Close, CloseChannel, FieldTable, FieldValue, Nack};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

pub use amqprs;

/// Longest wait for the TCP connect and AMQP handshake of one connection attempt.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for the broker to confirm a connection's close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default heartbeat (seconds) when the URL sets none; the broker may lower it. A
/// connection that hears nothing for two of them is given up and re-established: 10 s
/// notices a silently dead broker in ~20 s instead of the 2 minutes of RabbitMQ's 60 s.
const DEFAULT_HEARTBEAT: u16 = 10;

/// Shortest heartbeat accepted: amqprs checks for it every `heartbeat / 2` seconds, and
/// `0` (off) would make it give the connection up at once.
const MIN_HEARTBEAT: u16 = 2;

/// What an `amqp://user:pass@host:port/vhost?heartbeat=N` URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpUrl {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub vhost: String,
    pub heartbeat: u16,
}

impl AmqpUrl {
    /// Parses the URL as RabbitMQ documents it (<https://www.rabbitmq.com/docs/uri-spec>):
    /// user, password and vhost are percent-decoded (`/%2f` is the vhost `/`), an empty
    /// path is the vhost `/`, missing credentials are `guest`.
    pub fn parse(text: &str) -> Result<AmqpUrl, String> {
        let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
        match url.scheme() {
            "amqp" => {}
            "amqps" => {
                return Err(
                    "amqps:// is not supported: this build talks plain AMQP on a private network"
                        .to_owned(),
                );
            }
            other => return Err(format!("scheme {other:?} is not amqp://")),
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("the URL names no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|text| text.into_owned())
                .map_err(|_| format!("{s:?} is not valid percent-encoded UTF-8"))
        };
        let username = match url.username() {
            "" => "guest".to_owned(),
            user => decode(user)?,
        };
        let password = match url.password() {
            None => "guest".to_owned(),
            Some(pass) => decode(pass)?,
        };
        let vhost = match url.path() {
            "" | "/" => "/".to_owned(),
            path => decode(&path[1..])?,
        };
        let mut heartbeat = DEFAULT_HEARTBEAT;
        for (key, value) in url.query_pairs() {
            if key == "heartbeat" {
                heartbeat = value
                    .parse()
                    .ok()
                    .filter(|seconds| *seconds >= MIN_HEARTBEAT)
                    .ok_or_else(|| {
                        format!("heartbeat={value:?} is not a number of seconds from {MIN_HEARTBEAT} to 65535")
                    })?;
            }
        }
        Ok(AmqpUrl {
            host,
            port: url.port().unwrap_or(5672),
            username,
            password,
            vhost,
            heartbeat,
        })
    }
}

/// Closes `connection`, waiting for the broker's close-ok at most [`CLOSE_TIMEOUT`]: a
/// stalled broker must not hold up a shutdown or a reconnect.
pub(crate) async fn close(connection: Connection) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close()).await;
}

/// Opens one connection named `name` (shown in the management UI), bounded in time.
pub async fn connect(url: &str, name: &str) -> Result<Connection, BusError> {
    let redacted = crate::config::redact(url);
    let parsed = AmqpUrl::parse(url).map_err(|reason| BusError::Connect {
        url: redacted.clone(),
        reason,
    })?;
    let args = OpenConnectionArguments::new(
        &parsed.host,
        parsed.port,
        &parsed.username,
        &parsed.password,
    )
    .virtual_host(&parsed.vhost)
    .heartbeat(parsed.heartbeat)
    .connection_name(name)
    .finish();
    let connection = match tokio::time::timeout(OPEN_TIMEOUT, Connection::open(&args)).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(err)) => {
            return Err(BusError::Connect {
                url: redacted,
                reason: err.to_string(),
            });
        }
        Err(_) => {
            return Err(BusError::Connect {
                url: redacted,
                reason: format!("no answer within {} s", OPEN_TIMEOUT.as_secs()),
            });
        }
    };
    connection
        .register_callback(ConnectionEvents {
            name: name.to_owned(),
        })
        .await
        .map_err(BusError::amqp)?;
    Ok(connection)
}

/// Logs what the broker says about a connection (a forced close, a memory alarm).
struct ConnectionEvents {
    name: String,
}

#[async_trait::async_trait]
impl ConnectionCallback for ConnectionEvents {
    async fn close(&mut self, _: &Connection, close: Close) -> Result<(), amqprs::error::Error> {
        tracing::warn!(connection = %self.name, code = close.reply_code(), reason = %close.reply_text(), "the broker closed the connection");
        Ok(())
    }

    async fn blocked(&mut self, _: &Connection, reason: String) {
        tracing::warn!(connection = %self.name, %reason, "the broker blocks publishing on this connection");
    }

    async fn unblocked(&mut self, _: &Connection) {
        tracing::info!(connection = %self.name, "the broker unblocked this connection");
    }

    async fn secret_updated(&mut self, _: &Connection) {}
}

/// One message delivered to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub delivery_tag: u64,
    pub redelivered: bool,
    pub exchange: String,
    pub routing_key: String,
    pub properties: BasicProperties,
    pub data: Vec<u8>,
}

impl Delivery {
    /// `None` for a message without its delivery method (never sent by a broker).
    pub fn from_message(message: ConsumerMessage) -> Option<Delivery> {
        let deliver = message.deliver?;
        Some(Delivery {
            delivery_tag: deliver.delivery_tag(),
            redelivered: deliver.redelivered(),
            exchange: deliver.exchange().clone(),
            routing_key: deliver.routing_key().clone(),
            properties: message.basic_properties.unwrap_or_default(),
            data: message.content.unwrap_or_default(),
        })
    }
}

/// A header value, whatever its type.
pub fn header<'a>(table: &'a FieldTable, name: &str) -> Option<&'a FieldValue> {
    table
        .as_ref()
        .iter()
        .find(|(key, _)| key.as_ref() == name)
        .map(|(_, value)| value)
}

/// Adds a string header. Names longer than 255 bytes can't be sent and are skipped
/// (ours are constants); values are long strings, so any length goes.
pub fn put_str(table: &mut FieldTable, name: &str, value: &str) {
    if let (Ok(key), Ok(value)) = (name.try_into(), amqprs::LongStr::try_from(value)) {
        // amqprs counts an insert's size even when it replaces a value, which would
        // corrupt the encoded table: remove first.
        table.remove(&key);
        table.insert(key, FieldValue::S(value));
    }
}

/// Adds a signed 64-bit integer header.
pub fn put_i64(table: &mut FieldTable, name: &str, value: i64) {
    if let Ok(key) = name.try_into() {
        table.remove(&key);
        table.insert(key, FieldValue::l(value));
    }
}

/// The longest exchange name, queue name or routing key AMQP can carry (a short string).
/// amqprs panics on longer ones, so every name from outside is checked first.
pub const MAX_SHORT_STR: usize = 255;

/// `Err` when `name` (an exchange, queue or routing key) is too long for the wire.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.len() > MAX_SHORT_STR {
        return Err(format!(
            "{what} is {} bytes; AMQP allows at most {MAX_SHORT_STR}",
            name.len()
        ));
    }
    Ok(())
}

/// A message the broker returned (published `mandatory`, routed to no queue).
#[derive(Debug, Clone)]
pub struct Returned {
    pub reply_code: u16,
    pub reply_text: String,
    pub routing_key: String,
    pub properties: BasicProperties,
}

/// A publisher confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    Ack { tag: u64, multiple: bool },
    Nack { tag: u64, multiple: bool },
}

/// Why the broker closed a channel (e.g. 404 for a passive declare of a missing queue,
/// 406 for a declare whose arguments differ from the existing queue's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelClosed {
    pub code: u16,
    pub text: String,
}

/// AMQP reply code "not found".
pub const NOT_FOUND: u16 = 404;

/// The callbacks of one channel, as values: returned messages and confirms go to the
/// receivers handed out by [`ChannelEvents::returns`] / [`ChannelEvents::confirms`],
/// and the reason of a server-side close is kept for the next error message.
#[derive(Default)]
pub struct ChannelEvents {
    returns: Option<mpsc::UnboundedSender<Returned>>,
    confirms: Option<mpsc::UnboundedSender<Confirm>>,
    closed: CloseReason,
}

impl ChannelEvents {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returned messages of this channel arrive on the receiver.
    pub fn returns(&mut self) -> mpsc::UnboundedReceiver<Returned> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.returns = Some(tx);
        rx
    }

    /// Publisher confirms of this channel arrive on the receiver.
    pub fn confirms(&mut self) -> mpsc::UnboundedReceiver<Confirm> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.confirms = Some(tx);
        rx
    }

    /// Where the reason of a server-side close will be found.
    pub fn closed(&self) -> CloseReason {
        self.closed.clone()
    }

    /// Opens a channel on `connection` with these callbacks.
    pub async fn open(self, connection: &Connection) -> Result<ChannelHandle, BusError> {
        let closed = self.closed();
        let channel = connection
            .open_channel(None)
            .await
            .map_err(BusError::amqp)?;
        channel
            .register_callback(self)
            .await
            .map_err(BusError::amqp)?;
        Ok(ChannelHandle { channel, closed })
    }
}

/// A channel and where to read why the broker closed it.
#[derive(Clone)]
pub struct ChannelHandle {
    pub channel: Channel,
    pub closed: CloseReason,
}

impl ChannelHandle {
    /// A channel with no callbacks beyond remembering a close reason.
    pub async fn open(connection: &Connection) -> Result<ChannelHandle, BusError> {
        ChannelEvents::new().open(connection).await
    }

    /// `err`, with the broker's reason when it closed the channel.
    pub fn explain(&self, err: amqprs::error::Error) -> String {
        self.closed.explain(err)
    }

    /// Declares an exclusive, auto-delete queue named by the broker (`amq.gen-…`), for
    /// the replies or events this connection alone reads; returns its name.
    pub async fn declare_private_queue(&self, what: &str) -> Result<String, BusError> {
        self.queue_declare(
            QueueDeclareArguments::new("")
                .exclusive(true)
                .auto_delete(true)
                .finish(),
        )
        .await
        .map_err(|e| BusError::declare(what, self.explain(e)))?
        .map(|(name, _, _)| name)
        .ok_or_else(|| BusError::declare(what, "the broker named no queue"))
    }
}

impl std::ops::Deref for ChannelHandle {
    type Target = Channel;
    fn deref(&self) -> &Channel {
        &self.channel
    }
}

/// The reason the broker gave for closing a channel, once it has.
#[derive(Clone, Default)]
pub struct CloseReason(Arc<Mutex<Option<ChannelClosed>>>);

impl CloseReason {
    pub fn get(&self) -> Option<ChannelClosed> {
        self.0.lock().ok().and_then(|c| c.clone())
    }

    /// `err`, with the broker's reason when it closed the channel.
    pub fn explain(&self, err: amqprs::error::Error) -> String {
        self.explain_or(|| err.to_string())
    }

    /// The broker's reason when it closed the channel, else `otherwise()`.
    pub fn explain_or(&self, otherwise: impl FnOnce() -> String) -> String {
        match self.get() {
            Some(closed) => format!("{} ({})", closed.text, closed.code),
            None => otherwise(),
        }
    }

    fn set(&self, closed: ChannelClosed) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(closed);
        }
    }
}

#[async_trait::async_trait]
impl ChannelCallback for ChannelEvents {
    async fn close(
        &mut self,
        _: &Channel,
        close: CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        self.closed.set(ChannelClosed {
            code: close.reply_code(),
            text: close.reply_text().clone(),
        });
        Ok(())
    }

    async fn cancel(&mut self, _: &Channel, _: Cancel) -> Result<(), amqprs::error::Error> {
        // The broker cancelled a consumer (its queue was deleted). The consumer's
        // receiver ends; the supervisor reconnects and declares the queue again.
        Ok(())
    }

    async fn flow(&mut self, _: &Channel, active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }

    async fn publish_ack(&mut self, _: &Channel, ack: Ack) {
        if let Some(tx) = &self.confirms {
            let _ = tx.send(Confirm::Ack {
                tag: ack.delivery_tag(),
                multiple: ack.mutiple(),
            });
        }
    }

    async fn publish_nack(&mut self, _: &Channel, nack: Nack) {
        if let Some(tx) = &self.confirms {
            let _ = tx.send(Confirm::Nack {
                tag: nack.delivery_tag(),
                multiple: nack.multiple(),
            });
        }
    }

    async fn publish_return(
        &mut self,
        _: &Channel,
        ret: amqprs::Return,
        properties: BasicProperties,
        _content: Vec<u8>,
    ) {
        // The body is dropped here: it may hold a password (a register call while
        // user-svc is down) and nothing needs it.
        if let Some(tx) = &self.returns {
            let _ = tx.send(Returned {
                reply_code: ret.reply_code(),
                reply_text: ret.reply_text().clone(),
                routing_key: ret.routing_key().clone(),
                properties,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rabbitmq_urls() {
        let u = AmqpUrl::parse("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(
            u,
            AmqpUrl {
                host: "127.0.0.1".into(),
                port: 5672,
                username: "guest".into(),
                password: "guest".into(),
                vhost: "/".into(),
                heartbeat: DEFAULT_HEARTBEAT,
            }
        );
        let u = AmqpUrl::parse("amqp://us%40er:p%3Ass@broker/shop?heartbeat=30").unwrap();
        assert_eq!(
            (
                u.username.as_str(),
                u.password.as_str(),
                u.vhost.as_str(),
                u.port,
                u.heartbeat
            ),
            ("us@er", "p:ss", "shop", 5672, 30)
        );
        assert_eq!(AmqpUrl::parse("amqp://h").unwrap().vhost, "/");
        assert_eq!(AmqpUrl::parse("amqp://h").unwrap().username, "guest");
        assert!(AmqpUrl::parse("amqps://h").is_err());
        assert!(AmqpUrl::parse("http://h").is_err());
        assert!(AmqpUrl::parse("amqp://h?heartbeat=x").is_err());
        assert!(AmqpUrl::parse("amqp://h?heartbeat=0").is_err());
        assert!(AmqpUrl::parse("amqp://h?heartbeat=1").is_err());
        assert_eq!(
            AmqpUrl::parse("amqp://h?heartbeat=2").map(|u| u.heartbeat),
            Ok(2)
        );
        assert!(AmqpUrl::parse("not a url").is_err());
    }

    #[test]
    fn headers_round_trip() {
        let mut t = FieldTable::new();
        put_str(&mut t, "x-request-id", "r1");
        put_i64(&mut t, "x-deadline", 42);
        assert!(matches!(header(&t, "x-request-id"), Some(FieldValue::S(s)) if s.as_ref() == "r1"));
        assert_eq!(header(&t, "x-deadline"), Some(&FieldValue::l(42)));
        assert_eq!(header(&t, "missing"), None);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("routing key", "users.get").is_ok());
        assert!(check_name("routing key", &"x".repeat(256)).is_err());
    }
}

/// The patched text decoding of `vendor/amqp_serde`, tested here because the vendored
/// crates are outside the workspace.
#[cfg(test)]
mod wire_text_tests {
    use amqp_serde::types::{FieldTable, ShortStr};
    use amqp_serde::{from_bytes, to_bytes};

    #[test]
    fn a_short_string_that_is_not_utf8_keeps_its_length_and_re_encodes_as_read() {
        let mut frame = vec![200u8];
        frame.extend([0xffu8; 200]);
        let text: ShortStr = from_bytes(&frame).expect("decodes");
        assert_eq!(text.as_ref().len(), 200);
        assert!(text.as_ref().bytes().all(|b| b == b'?'));
        // Still a valid short string: re-encoding gives the same length prefix.
        assert_eq!(to_bytes(&text).expect("encodes"), {
            let mut expected = vec![200u8];
            expected.extend([b'?'; 200]);
            expected
        });
    }

    #[test]
    fn a_header_table_with_bytes_that_are_not_utf8_re_encodes_to_the_same_size() {
        // table: "k" => longstr "a\xff\xfeb" ('S', u32 length, bytes)
        let entry: Vec<u8> = [&[1u8, b'k', b'S'][..], &4u32.to_be_bytes(), b"a\xff\xfeb"].concat();
        let frame: Vec<u8> = [&(entry.len() as u32).to_be_bytes()[..], &entry].concat();
        let table: FieldTable = from_bytes(&frame).expect("decodes");
        let again = to_bytes(&table).expect("encodes");
        assert_eq!(again.len(), frame.len());
        assert!(again.ends_with(b"a??b"));
    }
}
