//! The pool's watchdog: a silently dead connection must not hold its pool permit
//! forever (sqlx issue #4349, https://github.com/launchbadge/sqlx/issues/4349).
//!
//! The problem: sqlx 0.9 pings every connection given back to the pool
//! (`Floating::return_to_pool` in sqlx-core's `pool/connection.rs`) and that ping has no
//! timeout. When the network path to the server stops forwarding without closing (a
//! NAT or firewall that forgot the flow, a frozen proxy, a failover), the ping is
//! written and its answer awaited forever: the task returning the connection keeps its
//! permit and the pool's size. After `max_connections` of them every acquire times out,
//! for good, even once the server is reachable again.
//!
//! Why not in our code around sqlx: the `after_release` hook runs *before* that ping,
//! so nothing it does bounds it; a timeout around a query only drops the query's
//! future, which is exactly what sends its connection into the ping; and the pool
//! cannot be told to give a permit back. (The acquire side is bounded already:
//! `acquire_timeout` covers the ping on acquire.) Replacing a wedged pool would need
//! every holder of the `DatabaseConnection` to go through a swappable handle, and would
//! leave the stuck tasks, their sockets and the old pool behind for good.
//!
//! What ends the wait is the socket itself. While the pool has no connection to spare,
//! the watchdog looks at this process's TCP sockets to the pool's server and shuts
//! down each one that has heard nothing from the server for `dead_after` although
//! something was sent to it since (the kernel's `TCP_INFO`). The task waiting on it
//! reads end-of-file; sqlx closes that connection, gives its permit back, and the pool
//! opens a new one. `dead_after` exceeds the statement timeout, and by then the server
//! has answered or cancelled anything it was asked: a live exchange never looks dead.
//! (What can: a transaction its caller leaves idle for `dead_after` on an exhausted
//! pool, when its last request and answer fell in the same millisecond, the kernel's
//! resolution. Ending that one is no loss.) Once the pool needs it, a dead connection is
//! so given up at most `dead_after` plus one check (at most 1 s) after its last sign of
//! life, whether it was stuck in that ping or in a query whose caller waits without a
//! deadline (the outbox relay, event consumers). A close of the pool, which waits for
//! every permit, is helped the same way.
//!
//! Linux only (`/proc/self/fd`, `TCP_INFO`); elsewhere no watchdog runs. A pool that
//! reaches its server over a Unix socket is not watched. Drop this once sqlx bounds the
//! release itself (proposed upstream in sqlx pull requests #4350 and #4407).

use sea_orm::sqlx::PgPool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Migrations running in this process ([`Migrating`]).
static MIGRATING: AtomicUsize = AtomicUsize::new(0);

/// Held while migrations run: they run without a statement timeout and may rightly
/// wait on the server longer than `dead_after` (an advisory lock, an index build), so
/// the watchdog leaves every socket alone meanwhile.
pub(super) struct Migrating(());

impl Migrating {
    pub(super) fn start() -> Migrating {
        MIGRATING.fetch_add(1, Ordering::SeqCst);
        Migrating(())
    }
}

impl Drop for Migrating {
    fn drop(&mut self) {
        MIGRATING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Watches `pool` until it is closed (and the close has completed).
pub(super) fn spawn(pool: &PgPool, dead_after: Duration) {
    #[cfg(target_os = "linux")]
    {
        let options = pool.connect_options();
        if options.get_socket().is_some() {
            return;
        }
        let server = (options.get_host().to_owned(), options.get_port());
        tokio::spawn(watch(pool.clone(), server, dead_after));
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (pool, dead_after);
}

#[cfg(target_os = "linux")]
async fn watch(pool: PgPool, (host, port): (String, u16), dead_after: Duration) {
    let period = (dead_after / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let max = pool.options().get_max_connections();
    let dead_after_ms = u32::try_from(dead_after.as_millis()).unwrap_or(u32::MAX);
    loop {
        tokio::time::sleep(period).await;
        // Closing waits for every permit, those of dead connections too: keep going
        // until it is done.
        let closing = pool.is_closed();
        if closing && pool.size() == 0 {
            return;
        }
        // Only a pool with nothing to spare: there a dead connection costs requests, and
        // a pool that copes is never touched.
        let exhausted = closing || (pool.size() >= max && pool.num_idle() == 0);
        if !exhausted || MIGRATING.load(Ordering::SeqCst) > 0 {
            continue;
        }
        let silent = sockets::silent(port, dead_after_ms);
        if silent.is_empty() {
            continue;
        }
        // Resolved only now, so a healthy pool never waits on DNS.
        let Ok(server) = tokio::net::lookup_host((host.as_str(), port)).await else {
            continue;
        };
        let server: Vec<_> = server.map(|a| a.ip()).collect();
        let mut shut = 0;
        for (peer, socket) in silent {
            if server.contains(&peer.ip()) && socket.shutdown(std::net::Shutdown::Both).is_ok() {
                shut += 1;
            }
        }
        if shut > 0 {
            tracing::warn!(
                connections = shut,
                silent_for_ms = dead_after_ms,
                "database connections silent although the server owes them an answer: \
                 shut down so the pool can replace them (sqlx #4349)"
            );
        }
    }
}

#[cfg(target_os = "linux")]
mod sockets {
    use std::net::{SocketAddr, TcpStream};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;

    /// `TCP_ESTABLISHED` of the kernel's TCP states.
    const ESTABLISHED: u8 = 1;

    /// This process's established TCP sockets to port `port` that have received
    /// nothing for `dead_after_ms` although something was sent since, with their peer.
    pub(super) fn silent(port: u16, dead_after_ms: u32) -> Vec<(SocketAddr, TcpStream)> {
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return Vec::new();
        };
        let mut silent = Vec::new();
        for entry in fds.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RawFd>().ok())
            else {
                continue;
            };
            // Sockets only (the link reads `socket:[inode]`).
            let Ok(link) = std::fs::read_link(entry.path()) else {
                continue;
            };
            if !link.as_os_str().as_bytes().starts_with(b"socket:") {
                continue;
            }
            let Some(socket) = duplicate(fd) else {
                continue;
            };
            if let Ok(peer) = socket.peer_addr()
                && peer.port() == port
                && waits_in_vain(&socket, dead_after_ms)
            {
                silent.push((peer, socket));
            }
        }
        silent
    }

    /// A handle of our own on the socket behind `fd`. Should its owner close `fd` in
    /// the meantime and the number be reused, this is the new file, checked like any
    /// other: never a number nobody holds.
    fn duplicate(fd: RawFd) -> Option<TcpStream> {
        // SAFETY: F_DUPFD_CLOEXEC only reads `fd` (a closed one fails with EBADF) and
        // returns a new descriptor that nothing else owns.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return None;
        }
        // SAFETY: `dup` is open and owned by nothing else. If it is not a TCP socket,
        // `peer_addr` or `TCP_INFO` below fails and it is only closed again.
        Some(TcpStream::from(unsafe { OwnedFd::from_raw_fd(dup) }))
    }

    fn waits_in_vain(socket: &TcpStream, dead_after_ms: u32) -> bool {
        let Some(info) = tcp_info(socket) else {
            return false;
        };
        // Both in milliseconds ago. A connection whose last answer arrived after its
        // last request is idle, not waiting; one that sent in the very millisecond of
        // the answer before counts as waiting (the ping sqlx sends on release follows
        // its query's answer that closely).
        info.tcpi_state == ESTABLISHED
            && info.tcpi_last_data_recv >= dead_after_ms
            && info.tcpi_last_data_sent <= info.tcpi_last_data_recv
    }

    fn tcp_info(socket: &TcpStream) -> Option<libc::tcp_info> {
        // SAFETY: `tcp_info` is plain integers, valid all zero.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `info` and sets `len`.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        (rc == 0).then_some(info)
    }
}
