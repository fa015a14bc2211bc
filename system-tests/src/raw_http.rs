//! A lean HTTP/1.1 load driver: each connection sends one pre-rendered request, reads
//! the response (status line, `Content-Length` or chunked body), and sends the next —
//! what `wrk` does, with no client library in between.
//!
//! Broker, databases, services and load generator share one small machine, so every
//! microsecond the generator spends is taken from the system it measures: reqwest cost
//! ~43 µs of CPU per request here, this driver ~15 µs (docs/BENCHMARKS.md).

use crate::load::{Figures, Load};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request, rendered once and sent as is on every iteration.
#[derive(Debug, Clone)]
pub struct RawRequest {
    bytes: Arc<Vec<u8>>,
}

impl RawRequest {
    /// `method path` with `headers`, and a JSON `body` if given (keep-alive).
    pub fn new(
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> RawRequest {
        let mut text = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\n");
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            text.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            ));
        }
        text.push_str("\r\n");
        let mut bytes = text.into_bytes();
        if let Some(body) = body {
            bytes.extend_from_slice(body);
        }
        RawRequest {
            bytes: Arc::new(bytes),
        }
    }
}

/// Runs `request` over `load.concurrency` keep-alive connections to `addr`; a 2xx
/// answer counts, anything else (or a broken connection, which is reopened) is an error.
pub async fn drive(addr: SocketAddr, request: &RawRequest, load: &Load) -> Figures {
    let request = request.clone();
    load.drive_with(
        |_| None::<Conn>,
        move |conn| {
            let request = request.clone();
            async move {
                let mut conn = match conn {
                    Some(conn) => conn,
                    None => match Conn::open(addr).await {
                        Ok(conn) => conn,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            return (None, false);
                        }
                    },
                };
                match conn.exchange(&request.bytes).await {
                    Ok(status) => (Some(conn), (200..300).contains(&status)),
                    Err(()) => (None, false),
                }
            }
        },
    )
    .await
}

/// One keep-alive connection and the bytes read past the last response.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// Longest wait for one response before the connection counts as broken.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

impl Conn {
    async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends the request and reads one whole response; `Err` when the connection is
    /// broken or the response can't be read.
    async fn exchange(&mut self, request: &[u8]) -> Result<u16, ()> {
        self.stream.write_all(request).await.map_err(|_| ())?;
        match tokio::time::timeout(RESPONSE_TIMEOUT, self.read_response()).await {
            Ok(result) => result,
            Err(_) => Err(()),
        }
    }

    async fn read_response(&mut self) -> Result<u16, ()> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| ())?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(())?;
        let header = |name: &str| {
            head.split("\r\n").skip(1).find_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
        };
        let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let length: Option<usize> = header("content-length").and_then(|v| v.parse().ok());
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        self.buf.drain(..head_end);
        if chunked {
            self.skip_chunked().await?;
        } else {
            let length = length.unwrap_or(0);
            while self.buf.len() < length {
                self.fill().await?;
            }
            self.buf.drain(..length);
        }
        if close {
            return Err(());
        }
        Ok(status)
    }

    async fn skip_chunked(&mut self) -> Result<(), ()> {
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    break i;
                }
                self.fill().await?;
            };
            let size_text = std::str::from_utf8(&self.buf[..line_end]).map_err(|_| ())?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| ())?;
            let need = line_end + 2 + size + 2;
            while self.buf.len() < need {
                self.fill().await?;
            }
            self.buf.drain(..need);
            if size == 0 {
                return Ok(());
            }
        }
    }

    async fn fill(&mut self) -> Result<(), ()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await.map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server answering two keep-alive requests: one sized, one chunked.
    #[tokio::test]
    async fn reads_sized_and_chunked_responses_on_one_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
                .await
                .unwrap();
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(
                b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            )
            .await
            .unwrap();
        });
        let req = RawRequest::new("GET", "x", "/", &[("authorization", "Bearer t")], None);
        let mut conn = Conn::open(addr).await.unwrap();
        assert_eq!(conn.exchange(&req.bytes).await, Ok(200));
        assert_eq!(conn.exchange(&req.bytes).await, Ok(404));
        assert!(conn.buf.is_empty());
    }

    #[test]
    fn renders_requests_with_bodies() {
        let req = RawRequest::new("POST", "h:1", "/orders", &[("a", "b")], Some(b"{}"));
        assert_eq!(
            String::from_utf8(req.bytes.to_vec()).unwrap(),
            "POST /orders HTTP/1.1\r\nhost: h:1\r\na: b\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
    }
}
