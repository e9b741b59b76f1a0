//! Following rsyslog's output files as they are written: a thread reads
//! what each file gained every few milliseconds, stamps every complete line
//! with the time it was read, and keeps, per file, which `seq`s of one
//! organization arrived, how often, and the first arrival's latency from
//! the entry's `received_at`.
//!
//! A line is one message as it came in (`%rawmsg%`): the RFC 5424 header,
//! then the `auditlog@32473` structured data, whose first parameters are
//! `id seq org timestamp received_at`, so the first ` seq="`, ` org="` and
//! ` received_at="` of a line are the entry's. The receipt time therefore
//! includes rsyslog's write of the file and up to one poll interval.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auditlog_domain::Timestamp;

use crate::AnyError;

/// The name of the tail's thread, by which its CPU time is told apart.
pub(crate) const THREAD_NAME: &str = "bench-tail";

/// What one file received of the organization.
#[derive(Debug, Default, Clone)]
pub(crate) struct Received {
    /// Lines of the organization, whatever their `seq`.
    pub(crate) lines: usize,
    /// Their bytes, newlines left out.
    pub(crate) bytes: usize,
    /// Arrivals of `seq` base + 1 + i.
    pub(crate) counts: Vec<u32>,
    /// Distinct `seq`s past the base.
    pub(crate) distinct: usize,
    /// Each `seq`'s first arrival: its `received_at` (ms since the Unix
    /// epoch), and the read time minus it, in µs.
    pub(crate) latencies_us: Vec<(i64, i64)>,
    /// When the last new `seq` was read, µs since the Unix epoch.
    pub(crate) last_new_us: i64,
}

impl Received {
    /// `seq`s in (base, through] that never arrived, and arrivals beyond
    /// the first of any `seq`.
    pub(crate) fn lost_and_duplicated(&self, base: i64, through: i64) -> (usize, usize) {
        let want = usize::try_from(through - base).unwrap_or(0);
        let lost = (0..want)
            .filter(|&i| self.counts.get(i).is_none_or(|&c| c == 0))
            .count();
        let dup = self.counts.iter().map(|&c| c.saturating_sub(1) as usize).sum();
        (lost, dup)
    }
}

struct Shared {
    org: String,
    /// `seq`s at or below it are not counted (i64::MAX: none is yet).
    base: AtomicI64,
    received: Mutex<Vec<Received>>,
    stop: AtomicBool,
}

/// The tail of some files, for one organization's messages.
pub(crate) struct Tail {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl Tail {
    /// Follows `files` from their current ends, every `poll`, counting
    /// the lines of organization `org`.
    pub(crate) fn start(files: &[PathBuf], org: &str, poll: Duration) -> Result<Self, AnyError> {
        let mut followed = Vec::with_capacity(files.len());
        for path in files {
            let mut file = File::options()
                .create(true)
                .append(true)
                .read(true)
                .open(path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            file.seek(SeekFrom::End(0))?;
            followed.push(Followed {
                file,
                pending: Vec::new(),
            });
        }
        let shared = Arc::new(Shared {
            org: org.to_owned(),
            base: AtomicI64::new(i64::MAX),
            received: Mutex::new(vec![Received::default(); files.len()]),
            stop: AtomicBool::new(false),
        });
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || follow(&inner, followed, poll))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Counts `seq`s above `base` from now on.
    pub(crate) fn count_from(&self, base: i64) {
        self.shared.base.store(base, Ordering::SeqCst);
    }

    /// A copy of what each file has received so far.
    pub(crate) fn snapshot(&self) -> Vec<Received> {
        self.shared.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits until `done` holds of what every file received, or `timeout`
    /// passes; whether it held.
    pub(crate) async fn wait(&self, timeout: Duration, done: impl Fn(&Received) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self
                .shared
                .received
                .lock()
                .map(|r| r.iter().all(&done))
                .unwrap_or(false);
            if all {
                return true;
            }
            if Instant::now() > deadline || self.thread.as_ref().is_none_or(JoinHandle::is_finished) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the thread and returns what each file received.
    pub(crate) fn finish(mut self) -> Result<Vec<Received>, AnyError> {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().map_err(|_| "the tail's thread panicked")??;
        }
        Ok(self.snapshot())
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

struct Followed {
    file: File,
    /// The start of a line not complete yet.
    pending: Vec<u8>,
}

/// The thread: reads what every file gained, then sleeps `poll`.
fn follow(shared: &Shared, mut files: Vec<Followed>, poll: Duration) -> Result<(), String> {
    let mut chunk = Vec::with_capacity(1 << 20);
    while !shared.stop.load(Ordering::SeqCst) {
        for (i, f) in files.iter_mut().enumerate() {
            chunk.clear();
            f.file
                .read_to_end(&mut chunk)
                .map_err(|e| format!("reading rsyslog's output: {e}"))?;
            if chunk.is_empty() {
                continue;
            }
            let at = now_us();
            f.pending.extend_from_slice(&chunk);
            let Some(end) = f.pending.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            let base = shared.base.load(Ordering::SeqCst);
            if let Ok(mut received) = shared.received.lock() {
                for line in f.pending[..end].split(|&b| b == b'\n') {
                    record(&mut received[i], line, &shared.org, base, at);
                }
            }
            f.pending.drain(..=end);
        }
        std::thread::sleep(poll);
    }
    Ok(())
}

/// Counts one line read at `at_us`, if it is one of `org`'s.
fn record(r: &mut Received, line: &[u8], org: &str, base: i64, at_us: i64) {
    let Ok(line) = std::str::from_utf8(line) else { return };
    if param(line, " org=\"") != Some(org) {
        return;
    }
    r.lines += 1;
    r.bytes += line.len();
    let Some(seq) = param(line, " seq=\"").and_then(|s| s.parse::<i64>().ok()) else {
        return;
    };
    if seq <= base {
        return;
    }
    let i = (seq - base - 1) as usize;
    if r.counts.len() <= i {
        r.counts.resize(i + 1, 0);
    }
    r.counts[i] += 1;
    if r.counts[i] > 1 {
        return;
    }
    r.distinct += 1;
    r.last_new_us = at_us;
    if let Some(t) = param(line, " received_at=\"").and_then(|t| Timestamp::parse(t).ok()) {
        r.latencies_us.push((t.millis(), at_us - t.millis() * 1000));
    }
}

/// The value of the first `key"…"` in `line` (no escapes in the values
/// read here).
fn param<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(key)? + key.len();
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "<110>1 2026-12-07T16:00:00.000Z h auditlog - guardrail.updated [auditlog@32473 \
        id=\"0190\" seq=\"12\" org=\"bench\" timestamp=\"2026-12-07T16:00:00.000Z\" \
        received_at=\"2026-12-07T16:00:00.250Z\" actor=\"a\" details=\"{\\\"seq\\\":1}\"] a b c/d";

    #[test]
    fn lines_are_counted_once_per_seq_with_their_latency() {
        let mut r = Received::default();
        let at = Timestamp::parse("2026-12-07T16:00:00.300Z").unwrap().millis() * 1000 + 500;
        record(&mut r, LINE.as_bytes(), "bench", 10, at);
        record(&mut r, LINE.as_bytes(), "bench", 10, at + 1);
        record(&mut r, LINE.as_bytes(), "other", 10, at);
        assert_eq!((r.lines, r.distinct), (2, 1));
        let committed = Timestamp::parse("2026-12-07T16:00:00.250Z").unwrap().millis();
        assert_eq!(r.latencies_us, vec![(committed, 50_500)]);
        assert_eq!(r.lost_and_duplicated(10, 13), (2, 1));
        let mut below = Received::default();
        record(&mut below, LINE.as_bytes(), "bench", 12, at);
        assert_eq!((below.lines, below.distinct), (1, 0));
    }
}
