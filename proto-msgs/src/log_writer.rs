//! [`BatchedStdout`]: log lines go to stdout in batches, not one `write` per line.
//!
//! Whoever logs appends its formatted line to a shared buffer (a mutex held for a
//! `memcpy`); a background thread writes the buffer out every [`FLUSH_EVERY`], or at
//! once when [`FLUSH_AT`] bytes are pending. Under load that turns thousands of
//! `write` calls a second into about a hundred and takes them off the request path;
//! nothing is dropped, and past [`WRITE_INLINE_AT`] pending bytes (stdout blocked) a
//! logger writes the buffer itself, so memory stays bounded. (`tracing-appender`'s
//! non-blocking writer hands every line to its thread through a channel, which cost
//! more CPU per line than the `write` it saves: docs/BENCHMARKS.md.)

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest time a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// Pending bytes that wake the writer thread early.
pub const FLUSH_AT: usize = 64 * 1024;
/// Pending bytes past which the logging thread writes them out itself.
pub const WRITE_INLINE_AT: usize = 4 * 1024 * 1024;

struct Shared {
    pending: Mutex<Vec<u8>>,
    wake: Condvar,
    stop: AtomicBool,
}

impl Shared {
    /// Writes out what is pending (the lock is released before the `write`).
    fn flush(&self) {
        let batch = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return,
        };
        if !batch.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&batch);
            let _ = out.flush();
        }
    }
}

/// A `MakeWriter` for tracing-subscriber's fmt layer.
#[derive(Clone)]
pub struct BatchedStdout {
    shared: Arc<Shared>,
}

/// Stops the writer thread and writes out what is left, when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchedStdout {
    /// The writer and the guard that flushes it; starts the writer thread.
    pub fn start() -> (BatchedStdout, FlushGuard) {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::with_capacity(FLUSH_AT)),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || {
                while !worker.stop.load(Ordering::Acquire) {
                    if let Ok(pending) = worker.pending.lock() {
                        let _ = worker.wake.wait_timeout_while(pending, FLUSH_EVERY, |p| {
                            p.len() < FLUSH_AT && !worker.stop.load(Ordering::Acquire)
                        });
                    }
                    worker.flush();
                }
                worker.flush();
            })
            .ok();
        (
            BatchedStdout {
                shared: shared.clone(),
            },
            FlushGuard { shared, thread },
        )
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.flush();
    }
}

/// One log line on its way into the buffer.
pub struct Line<'a> {
    shared: &'a Shared,
}

impl Write for Line<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let pending_len = match self.shared.pending.lock() {
            Ok(mut pending) => {
                pending.extend_from_slice(data);
                pending.len()
            }
            Err(_) => {
                // A thread panicked mid-append: write straight through.
                return std::io::stdout().write(data);
            }
        };
        if pending_len >= WRITE_INLINE_AT || self.shared.stop.load(Ordering::Acquire) {
            self.shared.flush();
        } else if pending_len >= FLUSH_AT {
            self.shared.wake.notify_one();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedStdout {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_until_flushed_and_none_is_lost() {
        let (writer, guard) = BatchedStdout::start();
        for i in 0..1000 {
            let mut line = tracing_subscriber::fmt::MakeWriter::make_writer(&writer);
            line.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        // Whatever the thread has not written yet is still pending, in order.
        let pending = writer.shared.pending.lock().unwrap().clone();
        let text = String::from_utf8(pending).unwrap();
        if let Some(first) = text.lines().next() {
            let n: usize = first.trim_start_matches("line ").parse().unwrap();
            assert_eq!(text.lines().count(), 1000 - n);
        }
        drop(guard);
        assert!(writer.shared.pending.lock().unwrap().is_empty());
    }
}
