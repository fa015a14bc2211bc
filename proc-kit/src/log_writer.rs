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
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest time a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// Pending bytes that wake the writer thread early.
pub const FLUSH_AT: usize = 64 * 1024;
/// Pending bytes past which the logging thread writes them out itself.
pub const WRITE_INLINE_AT: usize = 4 * 1024 * 1024;

type Sink = Box<dyn Write + Send>;

struct Shared {
    pending: Mutex<Vec<u8>>,
    /// Where batches go; its lock is held from taking a batch to writing it, so two
    /// flushes (the thread's and an inline one) can't write their batches out of order.
    sink: Mutex<Sink>,
    wake: Condvar,
    stop: AtomicBool,
}

/// A panic elsewhere while a lock was held leaves a byte buffer or a writer that is
/// still usable: carry on rather than lose lines or spin.
fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Writes out what is pending (`pending` is released before the `write`).
    fn flush(&self) {
        let mut sink = lock(&self.sink);
        let batch = std::mem::take(&mut *lock(&self.pending));
        if !batch.is_empty() {
            let _ = sink.write_all(&batch);
            let _ = sink.flush();
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
        Self::start_with(Box::new(std::io::stdout()))
    }

    fn start_with(sink: Sink) -> (BatchedStdout, FlushGuard) {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::with_capacity(FLUSH_AT)),
            sink: Mutex::new(sink),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || {
                while !worker.stop.load(Ordering::Acquire) {
                    let pending = lock(&worker.pending);
                    let _ = worker.wake.wait_timeout_while(pending, FLUSH_EVERY, |p| {
                        p.len() < FLUSH_AT && !worker.stop.load(Ordering::Acquire)
                    });
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
        let pending_len = {
            let mut pending = lock(&self.shared.pending);
            pending.extend_from_slice(data);
            pending.len()
        };
        // Without the writer thread (it could not be started, or it has stopped), or
        // with stdout blocked long enough for the buffer to grow this large, the
        // logger writes the buffer itself.
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

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_comes_out_once_and_in_order() {
        let out = Captured::default();
        let (writer, guard) = BatchedStdout::start_with(Box::new(out.clone()));
        std::thread::scope(|scope| {
            for t in 0..4 {
                let writer = writer.clone();
                scope.spawn(move || {
                    for i in 0..5000 {
                        let mut line = tracing_subscriber::fmt::MakeWriter::make_writer(&writer);
                        line.write_all(format!("{t} {i}\n").as_bytes())
                            .expect("buffered");
                    }
                });
            }
        });
        drop(guard);
        assert!(lock(&writer.shared.pending).is_empty());
        let text = String::from_utf8(lock(&out.0).clone()).expect("utf-8");
        let mut next = [0usize; 4];
        for line in text.lines() {
            let (t, i) = line.split_once(' ').expect("t i");
            let (t, i): (usize, usize) = (t.parse().expect("t"), i.parse().expect("i"));
            assert_eq!(i, next[t], "thread {t}'s lines out of order");
            next[t] += 1;
        }
        assert_eq!(next, [5000; 4]);
    }

    #[test]
    fn after_the_guard_is_dropped_lines_are_written_at_once() {
        let out = Captured::default();
        let (writer, guard) = BatchedStdout::start_with(Box::new(out.clone()));
        drop(guard);
        let mut line = tracing_subscriber::fmt::MakeWriter::make_writer(&writer);
        line.write_all(b"late\n").expect("written");
        assert_eq!(lock(&out.0).as_slice(), b"late\n");
    }
}
