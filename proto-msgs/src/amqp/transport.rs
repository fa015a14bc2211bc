//! The socket under lapin, and the runtime kit that lets us hand it over.
//!
//! lapin runs its I/O on a thread of its own and reads the socket through the
//! [`async_rs`] runtime it is given. Ours is tokio's in every respect but one: the TCP
//! stream is a [`Sanitized`] one, whose inbound frames have their short strings made
//! valid UTF-8 (see [`super::sanitize`]) before lapin's parser sees them.

use super::sanitize::{self, FRAME_END, FRAME_PREFIX};
use async_rs::traits::{Executor, Reactor, RuntimeKit};
use async_rs::util::Task;
use futures::io::{AsyncRead, AsyncWrite};
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::io::ReadBuf;

/// tokio, with [`Sanitized`] TCP streams.
#[derive(Clone, Debug)]
pub(crate) struct Kit {
    tokio: async_rs::Tokio,
}

impl Kit {
    /// Bound to the runtime this is called from (lapin's I/O thread has none of its own).
    pub(crate) fn current() -> Self {
        Kit {
            tokio: async_rs::Tokio::current(),
        }
    }
}

impl RuntimeKit for Kit {}

impl Executor for Kit {
    type Task<T: Send + 'static> = <async_rs::Tokio as Executor>::Task<T>;

    fn block_on<T, F: Future<Output = T>>(&self, f: F) -> T {
        self.tokio.block_on(f)
    }

    fn spawn<T: Send + 'static, F: Future<Output = T> + Send + 'static>(
        &self,
        f: F,
    ) -> Task<Self::Task<T>> {
        self.tokio.spawn(f)
    }

    fn spawn_blocking<T: Send + 'static, F: FnOnce() -> T + Send + 'static>(
        &self,
        f: F,
    ) -> Task<Self::Task<T>> {
        self.tokio.spawn_blocking(f)
    }
}

impl Reactor for Kit {
    type TcpStream = Sanitized;
    type Sleep = <async_rs::Tokio as Reactor>::Sleep;

    fn register<H: Read + Write + AsFd + AsRawFd + Send + 'static>(
        &self,
        socket: H,
    ) -> io::Result<impl AsyncRead + AsyncWrite + Send + Unpin + 'static> {
        self.tokio.register(socket)
    }

    fn sleep(&self, dur: Duration) -> Self::Sleep {
        self.tokio.sleep(dur)
    }

    fn interval(&self, dur: Duration) -> impl futures::Stream<Item = Instant> + Send + 'static {
        self.tokio.interval(dur)
    }

    // Not an `async fn`: the trait asks for a `'static` future, and one borrowing `self`
    // is not.
    #[allow(clippy::manual_async_fn)]
    fn tcp_connect_addr(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::TcpStream>> + Send + 'static {
        async move { Sanitized::connect(&addr.ip().to_string(), addr.port(), None).await }
    }
}

/// Largest frame we buffer whole before handing it on (RabbitMQ's `frame_max` is 128 KiB
/// by default and at most 1 MiB). A larger one passes through untouched and lapin refuses
/// it as it would have anyway.
const MAX_BUFFERED_FRAME: usize = 4 * 1024 * 1024;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// A TCP stream whose inbound AMQP frames are made safe for lapin's parser, one whole
/// frame at a time. Outbound bytes pass straight through.
pub(crate) struct Sanitized {
    tcp: Socket,
    /// What one read from the socket fills.
    scratch: Box<[u8]>,
    /// Bytes read but not yet part of a complete frame.
    inbound: Vec<u8>,
    /// Complete, fixed frames not yet handed to lapin, from `ready_at`.
    ready: Vec<u8>,
    ready_at: usize,
    /// Bytes of an oversized frame still to pass through untouched.
    passthrough: usize,
    /// The server answered with a protocol header instead of frames: no frames follow.
    raw: bool,
    started: bool,
}

impl Sanitized {
    /// Connects to `host:port` with Nagle off (small RPC frames must not wait), then,
    /// with `tls`, makes the TLS handshake for `host`.
    pub(crate) async fn connect(
        host: &str,
        port: u16,
        tls: Option<tokio_rustls::TlsConnector>,
    ) -> io::Result<Sanitized> {
        let plain = tokio::net::TcpStream::connect((host, port)).await?;
        plain.set_nodelay(true)?;
        let tcp = match tls {
            None => Socket::Plain(plain),
            Some(connector) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                Socket::Tls(Box::new(connector.connect(name, plain).await?))
            }
        };
        Ok(Sanitized {
            tcp,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            inbound: Vec::with_capacity(16 * 1024),
            ready: Vec::with_capacity(16 * 1024),
            ready_at: 0,
            passthrough: 0,
            raw: false,
            started: false,
        })
    }

    /// Moves every complete frame of `inbound` to `ready`, fixed.
    fn cut_frames(&mut self) {
        if !self.started && self.inbound.len() >= 4 {
            self.started = true;
            self.raw = self.inbound.starts_with(b"AMQP");
        }
        if self.raw {
            self.ready.append(&mut self.inbound);
            return;
        }
        let mut at = 0;
        while self.inbound.len() - at >= FRAME_PREFIX {
            let head = &self.inbound[at..at + FRAME_PREFIX];
            let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
            let total = FRAME_PREFIX + size + 1;
            if total > MAX_BUFFERED_FRAME {
                // Not ours to judge: hand it on as it comes and let lapin refuse it.
                self.passthrough = total;
                break;
            }
            if self.inbound.len() - at < total {
                break;
            }
            let frame = &mut self.inbound[at..at + total];
            // A frame without its end octet is lapin's to refuse, untouched.
            let replaced = if frame[total - 1] == FRAME_END {
                sanitize::frame(frame)
            } else {
                None
            };
            match replaced {
                Some(new) => self.ready.extend_from_slice(&new),
                None => self.ready.extend_from_slice(frame),
            }
            at += total;
        }
        if self.passthrough > 0 {
            let n = self.passthrough.min(self.inbound.len() - at);
            self.ready.extend_from_slice(&self.inbound[at..at + n]);
            self.passthrough -= n;
            at += n;
        }
        self.inbound.drain(..at);
    }

    /// Copies ready bytes into `out`.
    fn hand_over(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.ready.len() - self.ready_at);
        out[..n].copy_from_slice(&self.ready[self.ready_at..self.ready_at + n]);
        self.ready_at += n;
        if self.ready_at == self.ready.len() {
            self.ready.clear();
            self.ready_at = 0;
        }
        n
    }
}

impl AsyncRead for Sanitized {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            if this.ready_at < this.ready.len() {
                return Poll::Ready(Ok(this.hand_over(out)));
            }
            if out.is_empty() {
                return Poll::Ready(Ok(0));
            }
            // Bytes of an oversized frame go straight into lapin's buffer.
            if this.passthrough > 0 && this.inbound.is_empty() {
                let want = this.passthrough.min(out.len());
                let mut buf = ReadBuf::new(&mut out[..want]);
                ready!(tokio::io::AsyncRead::poll_read(
                    Pin::new(&mut this.tcp),
                    cx,
                    &mut buf
                ))?;
                let n = buf.filled().len();
                this.passthrough -= n;
                return Poll::Ready(Ok(n));
            }
            let mut buf = ReadBuf::new(&mut this.scratch[..]);
            ready!(tokio::io::AsyncRead::poll_read(
                Pin::new(&mut this.tcp),
                cx,
                &mut buf
            ))?;
            let n = buf.filled().len();
            this.inbound.extend_from_slice(buf.filled());
            if n == 0 {
                // End of stream: whatever is left (a partial frame) goes as it is.
                this.ready.append(&mut this.inbound);
                if this.ready_at < this.ready.len() {
                    continue;
                }
                return Poll::Ready(Ok(0));
            }
            this.cut_frames();
        }
    }
}

impl AsyncWrite for Sanitized {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        tokio::io::AsyncWrite::poll_write(Pin::new(&mut self.get_mut().tcp), cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        tokio::io::AsyncWrite::poll_write_vectored(Pin::new(&mut self.get_mut().tcp), cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_flush(Pin::new(&mut self.get_mut().tcp), cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut self.get_mut().tcp), cx)
    }
}

/// The byte stream under [`Sanitized`]: plain TCP, or TLS over it.
enum Socket {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl tokio::io::AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Socket::Plain(s) => s.is_write_vectored(),
            Socket::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The TLS client of `amqps://` URLs: the server's certificate must chain to the CAs of
/// `ca_file` (PEM), or else to the system's roots, and name the URL's host. One crypto
/// provider for the whole workspace: ring (sqlx's rustls uses it too).
pub(crate) fn tls_connector(
    ca_file: Option<&std::path::Path>,
) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("the CA file {} is not PEM: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "the CA file {} holds no certificate",
                    path.display()
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("a CA of {} is not usable: {e}", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err("no system CA certificates found: set cacertfile in the URL".into());
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        config,
    )))
}
