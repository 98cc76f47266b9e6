//! The serial console as a growing byte log: a reader thread appends everything QEMU's serial port prints, and
//! waiters block on a condition variable until their pattern shows up, the machine goes quiet for good, or time
//! runs out.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a machine may print nothing before a waiter says so (once), when [`SerialLog::follow`] was
/// given a note for it.
const SILENCE: Duration = Duration::from_secs(60);

struct State {
    bytes: Vec<u8>,
    /// The stream ended: QEMU exited or closed the port.
    closed: bool,
    last_growth: Instant,
    silence_noted: bool,
}

pub(crate) struct SerialLog {
    state: Mutex<State>,
    grew: Condvar,
    /// Printed on stderr when the console stays silent for [`SILENCE`] while someone waits on it.
    silence_note: Option<String>,
}

pub(crate) enum Wait<T> {
    Found(T),
    Closed,
    TimedOut,
}

impl SerialLog {
    /// Starts a thread copying `source` into a new log (and into `copy`, the on-disk log kept for debugging).
    pub(crate) fn follow(
        source: impl Read + Send + 'static,
        mut copy: File,
        silence_note: Option<String>,
    ) -> (Arc<SerialLog>, JoinHandle<()>) {
        let log = Arc::new(SerialLog {
            state: Mutex::new(State {
                bytes: Vec::new(),
                closed: false,
                last_growth: Instant::now(),
                silence_noted: false,
            }),
            grew: Condvar::new(),
            silence_note,
        });
        let writer = Arc::clone(&log);
        let echo = std::env::var_os("RIXOS_QEMU_ECHO").is_some();
        let handle = std::thread::spawn(move || {
            let mut source = source;
            let mut buf = [0u8; 4096];
            loop {
                let n = match source.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                // The on-disk copy and the echo are best effort: the in-memory log is what tests read.
                let _ = copy.write_all(&buf[..n]);
                if echo {
                    let _ = std::io::stderr().write_all(&buf[..n]);
                }
                let mut state = writer.lock();
                state.bytes.extend_from_slice(&buf[..n]);
                state.last_growth = Instant::now();
                drop(state);
                writer.grew.notify_all();
            }
            writer.lock().closed = true;
            writer.grew.notify_all();
        });
        (log, handle)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Calls `find` on the bytes from `from` on, each time more arrive, until it returns Some or the deadline.
    pub(crate) fn wait_until<T>(
        &self,
        from: usize,
        timeout: Duration,
        mut find: impl FnMut(&[u8]) -> Option<T>,
    ) -> Wait<T> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(found) = find(&state.bytes[from.min(state.bytes.len())..]) {
                return Wait::Found(found);
            }
            if state.closed {
                return Wait::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Wait::TimedOut;
            }
            if let Some(note) = &self.silence_note
                && !state.silence_noted
                && now.duration_since(state.last_growth) >= SILENCE
            {
                eprintln!("{note}");
                state.silence_noted = true;
            }
            // Wake at least every few seconds, so a long silence is noticed while waiting.
            let slice = (deadline - now).min(Duration::from_secs(5));
            state = self
                .grew
                .wait_timeout(state, slice)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The text of the bytes in `start..end`.
    pub(crate) fn text_between(&self, start: usize, end: usize) -> String {
        let state = self.lock();
        let end = end.min(state.bytes.len());
        clean(&state.bytes[start.min(end)..end])
    }

    pub(crate) fn text(&self) -> String {
        clean(&self.lock().bytes)
    }

    /// The last `n` non-empty lines, with terminal control sequences removed.
    pub(crate) fn tail(&self, n: usize) -> Vec<String> {
        let text = self.text();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| l.to_string())
            .collect()
    }
}

/// Serial bytes as readable text: lossy UTF-8, carriage returns and ANSI escape sequences dropped.
pub(crate) fn clean(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {}
            '\u{1b}' => {
                // CSI: ESC [ parameters final-byte; other escapes: ESC and one character.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_drops_carriage_returns_and_escape_sequences() {
        assert_eq!(clean(b"a\r\n\x1b[1;32mgreen\x1b[0m\x1bcb"), "a\ngreenb");
    }

    #[test]
    fn waiting_sees_data_that_arrives_later_and_reports_close() {
        let (rx, mut tx) = std::io::pipe().unwrap();
        let (log, handle) = SerialLog::follow(rx, tempfile::tempfile().unwrap(), None);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            tx.write_all(b"booting\nlogin: ").unwrap();
        });
        let found = log.wait_until(0, Duration::from_secs(5), |b| {
            b.windows(6).position(|w| w == b"login:").map(|p| p + 6)
        });
        assert!(matches!(found, Wait::Found(14)));
        writer.join().unwrap();
        handle.join().unwrap();
        assert!(matches!(
            log.wait_until(0, Duration::from_secs(5), |_| None::<()>),
            Wait::Closed
        ));
        assert_eq!(log.tail(1), ["login: "]);
    }
}
