//! The AMQP client underneath this crate: [lapin](https://docs.rs/lapin), from the crate
//! registry as published.
//!
//! lapin runs one I/O thread per connection, so a frame in or out crosses threads: a
//! process keeps **one** connection ([`crate::Bus`]) with a channel per role, publishes
//! without waiting for each write, and acks in batches where it can.
//!
//! What the rest of the crate needs from lapin lives here: connecting from an `amqp://`
//! URL (over [`transport`], whose socket makes every inbound short string valid UTF-8
//! first: see [`sanitize`]), header helpers, names checked against AMQP's limits, and the
//! broker's reason when it closed a channel.

pub mod sanitize;
mod transport;

use crate::error::BusError;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{Connection, ConnectionProperties};
use std::time::Duration;

pub use lapin;
pub use lapin::message::Delivery;

/// Longest wait for the TCP connect and AMQP handshake of one connection attempt.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for the broker to confirm a connection's or channel's close.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default heartbeat (seconds) when the URL sets none; the broker may lower it. A
/// connection that hears nothing for two of them is given up and re-established: 10 s
/// notices a silently dead broker in ~20 s instead of the 2 minutes of RabbitMQ's 60 s.
const DEFAULT_HEARTBEAT: u16 = 10;

/// Shortest heartbeat accepted: lapin sends one every `heartbeat / 2` seconds.
const MIN_HEARTBEAT: u16 = 2;

/// What an `amqp://user:pass@host:port/vhost?heartbeat=N` (or `amqps://…`) URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpUrl {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub vhost: String,
    pub heartbeat: u16,
    /// `amqps://`: TLS, the server's certificate checked against `ca_file` (the
    /// `cacertfile` query parameter, as RabbitMQ's URI spec names it) or else the
    /// system's roots, for the URL's host name.
    pub tls: bool,
    pub ca_file: Option<std::path::PathBuf>,
}

impl AmqpUrl {
    /// Parses the URL as RabbitMQ documents it (<https://www.rabbitmq.com/docs/uri-spec>):
    /// user, password and vhost are percent-decoded (`/%2f` is the vhost `/`), an empty
    /// path is the vhost `/`, missing credentials are `guest`.
    pub fn parse(text: &str) -> Result<AmqpUrl, String> {
        let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
        let tls = match url.scheme() {
            "amqp" => false,
            "amqps" => true,
            other => return Err(format!("scheme {other:?} is neither amqp:// nor amqps://")),
        };
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
        let mut ca_file = None;
        for (key, value) in url.query_pairs() {
            if key == "cacertfile" {
                if !tls {
                    return Err("cacertfile is for amqps:// URLs".to_owned());
                }
                ca_file = Some(std::path::PathBuf::from(value.as_ref()));
            } else if key == "heartbeat" {
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
            port: url.port().unwrap_or(if tls { 5671 } else { 5672 }),
            username,
            password,
            vhost,
            heartbeat,
            tls,
            ca_file,
        })
    }
}

/// Opens one connection named `name` (shown in the management UI), bounded in time.
pub async fn connect(url: &str, name: &str) -> Result<Connection, BusError> {
    let redacted = crate::config::redact(url);
    let parsed = AmqpUrl::parse(url).map_err(|reason| BusError::Connect {
        url: redacted.clone(),
        reason,
    })?;
    let uri = AMQPUri {
        scheme: AMQPScheme::AMQP,
        authority: AMQPAuthority {
            userinfo: AMQPUserInfo {
                username: parsed.username.clone(),
                password: parsed.password.clone(),
            },
            host: parsed.host.clone(),
            port: parsed.port,
        },
        vhost: parsed.vhost.clone(),
        query: AMQPQueryString {
            heartbeat: Some(parsed.heartbeat),
            ..Default::default()
        },
    };
    let tls =
        match parsed.tls {
            true => Some(transport::tls_connector(parsed.ca_file.as_deref()).map_err(
                |reason| BusError::Connect {
                    url: redacted.clone(),
                    reason,
                },
            )?),
            false => None,
        };
    let props = ConnectionProperties::default().with_connection_name(name.into());
    let runtime = async_rs::Runtime::new(transport::Kit::current());
    let open = Connection::connector(
        uri,
        runtime,
        async move |uri: AMQPUri, _| {
            let host = uri.authority.host.clone();
            let connect = transport::Sanitized::connect(&host, uri.authority.port, tls.clone());
            match tokio::time::timeout(OPEN_TIMEOUT, connect).await {
                Ok(Ok(stream)) => Ok(lapin::tcp::AsyncTcpStream::Plain(stream)),
                Ok(Err(err)) => Err(err.into()),
                Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
            }
        },
        props,
    );
    match tokio::time::timeout(OPEN_TIMEOUT, open).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(err)) => Err(BusError::Connect {
            url: redacted,
            reason: err.to_string(),
        }),
        Err(_) => Err(BusError::Connect {
            url: redacted,
            reason: format!("no answer within {} s", OPEN_TIMEOUT.as_secs()),
        }),
    }
}

/// Closes `connection`, waiting for the broker's close-ok at most [`CLOSE_TIMEOUT`]: a
/// stalled broker must not hold up a shutdown or a reconnect.
pub(crate) async fn close(connection: &Connection) {
    if connection.status().connected() {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close(200, "bye".into())).await;
    }
}

/// Closes `channel` the same way.
pub(crate) async fn close_channel(channel: &lapin::Channel) {
    if channel.status().connected() {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, channel.close(200, "bye".into())).await;
    }
}

/// A header value, whatever its type.
pub fn header<'a>(table: &'a FieldTable, name: &str) -> Option<&'a AMQPValue> {
    table.inner().get(name)
}

/// Adds a string header (a long string: any length, any bytes). Names longer than 255
/// bytes can't be sent and are skipped (ours are constants).
pub fn put_str(table: &mut FieldTable, name: &str, value: &str) {
    if name.len() <= MAX_SHORT_STR {
        table.insert(name.into(), AMQPValue::LongString(LongString::from(value)));
    }
}

/// Adds a signed 64-bit integer header.
pub fn put_i64(table: &mut FieldTable, name: &str, value: i64) {
    if name.len() <= MAX_SHORT_STR {
        table.insert(name.into(), AMQPValue::LongLongInt(value));
    }
}

/// The longest exchange name, queue name or routing key AMQP can carry (a short string).
/// lapin would fail the whole frame on a longer one, so names from outside are checked.
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

/// AMQP reply code "not found" (a passive declare of a missing queue).
pub const NOT_FOUND: u16 = 404;

/// The broker's reply code when `err` is its closing of a channel or connection.
pub fn reply_code(err: &lapin::Error) -> Option<u16> {
    match err.kind() {
        lapin::ErrorKind::ProtocolError(e) => Some(e.get_id()),
        _ => None,
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
                tls: false,
                ca_file: None,
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
        let tls = AmqpUrl::parse("amqps://h/%2f?cacertfile=/etc/ca.pem").unwrap();
        assert!(tls.tls);
        assert_eq!(tls.port, 5671);
        assert_eq!(
            tls.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert!(AmqpUrl::parse("amqp://h?cacertfile=/etc/ca.pem").is_err());
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
        let mut t = FieldTable::default();
        put_str(&mut t, "x-request-id", "r1");
        put_i64(&mut t, "x-deadline", 42);
        assert_eq!(
            header(&t, "x-request-id"),
            Some(&AMQPValue::LongString("r1".into()))
        );
        assert_eq!(header(&t, "x-deadline"), Some(&AMQPValue::LongLongInt(42)));
        assert_eq!(header(&t, "missing"), None);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("routing key", "users.get").is_ok());
        assert!(check_name("routing key", &"x".repeat(256)).is_err());
    }
}
