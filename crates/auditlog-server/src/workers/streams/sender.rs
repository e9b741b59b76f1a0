//! One stream's sender: connects to its receiver, writes every entry past
//! the stream's cursor in `seq` order, and moves the cursor as the
//! receiver confirms by staying connected (see `auditlog_domain::stream`).
//!
//! The sender holds the stream's lease while it works and reports to the
//! store at least every few seconds; when the store says the lease or the
//! settings moved on, it stops. What it has in memory is bounded whatever
//! the receiver does: one batch of entries (at most [`BATCH`] entries and
//! [`BATCH_BYTES`] of messages), and a write that the receiver does not
//! take within the write timeout ends the connection.
//!
//! The cursor the sender works from moves as soon as a batch is confirmed;
//! the store is told at most every [`REPORT_EVERY`] (and at least every
//! third of a lease), by a write that goes on beside the sending: it waits
//! for the writer's connection, which a busy writer can hold for hundreds
//! of milliseconds. One report at most is on its way at a time, and one
//! unanswered for a third of a lease is waited for before sending more.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auditlog_domain::filter::{Filter, Page};
use auditlog_domain::siem::{self, Header};
use auditlog_domain::store::{HeldStream, Progress};
use auditlog_domain::stream::{Stream, Window, backoff_ms, newly_purged};
use auditlog_domain::{Clock, Entry, OrgId, StoreError};
use rand::RngExt;
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::StreamsConfig;
use super::connect::{Connection, connect};
use super::thread::MainStore;
use crate::metrics::Metrics;

/// Entries read from the log per batch.
pub const BATCH: u32 = 500;
/// A batch's messages stop growing past this many bytes.
pub const BATCH_BYTES: usize = 1024 * 1024;
/// How often at most the cursor is written to the store while it moves.
/// Each write waits for the writer's connection; awaited once a batch, it
/// bounded a stream to a batch per commit (about 18,000 entries/s where
/// commits took 25 ms). A crash resends at most this much more.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Why a sender stopped or a connection ended.
enum Ended {
    /// The lease or the settings moved on, or the process is stopping.
    Stop,
    /// The connection failed; try again after a pause.
    Failed(String),
}

impl From<StoreError> for Ended {
    fn from(e: StoreError) -> Self {
        Ended::Failed(format!("reading the log: {e}"))
    }
}

pub struct Sender {
    pub store: MainStore,
    pub clock: Arc<dyn Clock>,
    pub config: StreamsConfig,
    pub metrics: Metrics,
    pub holder: String,
    pub org: OrgId,
    pub org_slug: String,
    pub stream: Stream,
    pub tls: Option<Arc<ClientConfig>>,
    /// Changes when the writer commits.
    pub commits: watch::Receiver<u64>,
    pub cancel: CancellationToken,
    /// Entries found purged before they were sent, not yet reported. A
    /// report the store then fails to record loses them from the stream's
    /// count; the metric and the log still have them.
    pub purged: AtomicU64,
    /// The last `seq` up to which gaps have been counted: a connection that
    /// fails after reading past a gap reads it again from the cursor, and
    /// the same purged entries must not count twice.
    pub gaps_counted_through: AtomicI64,
}

impl Sender {
    pub fn new_held(parts: SenderParts, held: HeldStream, org_slug: String, tls: Option<Arc<ClientConfig>>) -> Self {
        let cursor = held.stream.state.cursor;
        Self {
            store: parts.store,
            clock: parts.clock,
            config: parts.config,
            metrics: parts.metrics,
            holder: parts.holder,
            org: held.org_id,
            org_slug,
            stream: held.stream,
            tls,
            commits: parts.commits,
            cancel: parts.cancel,
            purged: AtomicU64::new(0),
            gaps_counted_through: AtomicI64::new(cursor),
        }
    }

    /// Sends until the lease or the settings move on, or the process stops.
    pub async fn run(self) {
        let mut cursor = self.stream.state.cursor;
        let mut failures = 0u32;
        loop {
            let before = cursor;
            let error = match self.connected(&mut cursor).await {
                Ended::Stop => break,
                Ended::Failed(e) => e,
            };
            if cursor > before {
                // The receiver took entries: a new outage starts its
                // backoff from the beginning.
                failures = 0;
            }
            self.metrics.stream_failures.inc();
            tracing::warn!(stream = %self.stream.settings.id, error = %error, "SIEM stream receiver");
            if !self.report(cursor, Some(error)).await {
                break;
            }
            let pause = backoff_ms(failures, rand::rng().random::<f64>());
            failures = failures.saturating_add(1);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(pause.max(0) as u64)) => {}
                () = self.cancel.cancelled() => break,
            }
        }
        let s = &self.stream.settings;
        let (org, id, holder) = (self.org, s.id.clone(), self.holder.clone());
        let released = (self.store)
            .call(move |store| async move { store.release_stream(org, &id, &holder).await })
            .await;
        if let Err(e) = released {
            tracing::warn!(stream = %s.id, error = %e, "releasing a SIEM stream");
        }
    }

    /// Records progress (and renews the lease); `false` when the sender
    /// must stop.
    async fn report(&self, cursor: i64, error: Option<String>) -> bool {
        self.held(self.report_beside(cursor, error).answer().await)
    }

    fn progress(&self, cursor: i64, error: Option<String>) -> Progress {
        let now = self.clock.now();
        Progress {
            cursor,
            error,
            at: now,
            lease_until: now.plus_millis(self.config.lease.as_millis() as i64),
            purged: self.purged.swap(0, Ordering::Relaxed),
        }
    }

    /// Whether the store's answer to a report lets the sender go on.
    fn held(&self, answer: Result<bool, StoreError>) -> bool {
        match answer {
            Ok(held) => held,
            // The lease runs out unless a later report gets through.
            Err(e) => {
                tracing::warn!(stream = %self.stream.settings.id, error = %e, "recording a SIEM stream's progress");
                true
            }
        }
    }

    /// Records progress on a task of its own, so the sending goes on
    /// while the store is busy.
    fn report_beside(&self, cursor: i64, error: Option<String>) -> Reporting {
        let (org, holder) = (self.org, self.holder.clone());
        let (id, revision) = (self.stream.settings.id.clone(), self.stream.state.revision);
        let progress = self.progress(cursor, error);
        let task = (self.store)
            .spawn(move |store| async move { store.stream_progress(org, &id, &holder, revision, progress).await });
        Reporting {
            since: Instant::now(),
            task,
        }
    }

    /// One connection's life: connects, then sends until it fails.
    async fn connected(&self, cursor: &mut i64) -> Ended {
        let s = &self.stream.settings;
        let connecting = connect(
            &self.config.policy,
            &s.destination,
            self.tls.clone(),
            self.config.connect_timeout,
        );
        let conn = tokio::select! {
            c = connecting => c,
            () = self.cancel.cancelled() => return Ended::Stop,
        };
        let conn = match conn {
            Ok(c) => c,
            Err(e) => return Ended::Failed(format!("connecting to {}: {e}", s.destination.to_url())),
        };
        let (reader, writer) = tokio::io::split(conn);
        let closed = watch_closed(reader);
        tokio::pin!(closed);
        let mut pump = Pump {
            sender: self,
            commits: self.commits.clone(),
            writer,
            window: Window::default(),
            position: *cursor,
            started: Instant::now(),
            last_report: Instant::now(),
            unreported: false,
            reporting: None,
            buf: Vec::with_capacity(64 * 1024),
            message: String::with_capacity(1024),
        };
        let ended = loop {
            let step = tokio::select! {
                step = pump.step(cursor) => step,
                why = &mut closed => Err(Ended::Failed(why)),
                () = self.cancel.cancelled() => Err(Ended::Stop),
            };
            if let Err(ended) = step {
                break ended;
            }
        };
        // A report still on its way lands before the next one is made.
        if let Some(r) = pump.reporting.take() {
            let _ = r.answer().await;
        }
        ended
    }

    fn header(&self) -> Header<'_> {
        Header {
            facility: self.stream.settings.facility,
            hostname: &self.config.hostname,
            app_name: &self.stream.settings.app_name,
        }
    }
}

/// The parts every sender of a process shares.
#[derive(Clone)]
pub struct SenderParts {
    pub store: MainStore,
    pub clock: Arc<dyn Clock>,
    pub config: StreamsConfig,
    pub metrics: Metrics,
    pub holder: String,
    pub commits: watch::Receiver<u64>,
    pub cancel: CancellationToken,
}

/// Resolves when the receiver closes the connection or it breaks: a syslog
/// receiver never sends, so anything but waiting means the end.
async fn watch_closed(mut reader: tokio::io::ReadHalf<Connection>) -> String {
    let mut scratch = [0u8; 512];
    loop {
        match reader.read(&mut scratch).await {
            Ok(0) => return "the receiver closed the connection".into(),
            Ok(_) => continue,
            Err(e) => return format!("the connection broke: {e}"),
        }
    }
}

/// A report of progress on its way to the store.
struct Reporting {
    since: Instant,
    task: tokio::task::JoinHandle<Result<bool, StoreError>>,
}

impl Reporting {
    /// The store's answer, once it has come.
    async fn answer(self) -> Result<bool, StoreError> {
        super::thread::answer(self.task.await)
    }
}

/// The sending side of one connection.
struct Pump<'a> {
    sender: &'a Sender,
    commits: watch::Receiver<u64>,
    writer: tokio::io::WriteHalf<Connection>,
    window: Window,
    /// The last `seq` written on this connection (or skipped).
    position: i64,
    started: Instant,
    last_report: Instant,
    /// The cursor moved since the last report.
    unreported: bool,
    reporting: Option<Reporting>,
    buf: Vec<u8>,
    /// One message at a time, before framing; kept between messages.
    message: String,
}

impl Pump<'_> {
    fn now_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    /// Writes the next batch, or waits for entries (or for written ones to
    /// settle); then reports what the receiver has had.
    async fn step(&mut self, cursor: &mut i64) -> Result<(), Ended> {
        // Marked seen before reading, so a commit during the read wakes
        // the wait below.
        self.commits.borrow_and_update();
        let s = self.sender;
        let (org, after) = (s.org, self.position);
        let page = (s.store)
            .call(move |store| async move {
                store
                    .list(org, &Filter::in_order(after, None), Page::first(BATCH))
                    .await
            })
            .await?;
        let full = page.len() == BATCH as usize;
        if !page.is_empty() {
            self.write(&page).await?;
        }
        // What the receiver has had moves the cursor here at once (a
        // reconnection resends from it, and a failure reports it); the store
        // hears of it at most every REPORT_EVERY, beside the sending.
        let settled = self.window.confirm(self.now_ms()).filter(|&seq| seq > *cursor);
        if let Some(seq) = settled {
            *cursor = seq;
            self.unreported = true;
        }
        self.collect_report().await?;
        let since = self.last_report.elapsed();
        let due = (self.unreported && since >= REPORT_EVERY) || since >= s.config.lease / 3;
        if due && self.reporting.is_none() {
            self.last_report = Instant::now();
            self.unreported = false;
            self.reporting = Some(s.report_beside(*cursor, None));
        }
        if !full {
            // Nothing more to read: wait for a commit, or for what was
            // written to settle, or for another replica's entries.
            let pause = if self.window.is_empty() {
                s.config.poll_interval
            } else {
                Duration::from_millis(250).min(s.config.poll_interval)
            };
            tokio::select! {
                changed = self.commits.changed() => {
                    if changed.is_err() {
                        // The writer has stopped: the process is ending.
                        tokio::time::sleep(pause).await;
                    }
                }
                () = tokio::time::sleep(pause) => {}
            }
        }
        Ok(())
    }

    /// Takes the answer of a report that has landed, or waits for one on
    /// its way for a third of a lease; `Stop` when the lease or the
    /// settings moved on.
    async fn collect_report(&mut self) -> Result<(), Ended> {
        let s = self.sender;
        let Some(r) = self
            .reporting
            .take_if(|r| r.task.is_finished() || r.since.elapsed() >= s.config.lease / 3)
        else {
            return Ok(());
        };
        if s.held(r.answer().await) {
            Ok(())
        } else {
            Err(Ended::Stop)
        }
    }

    /// Says that the entries between `through` and `next` are gone before
    /// this stream read them: a log's `seq`s have no gaps but those
    /// retention leaves, so the receiver was away past the plan's window.
    fn missed(&self, through: i64, next: i64) {
        let s = self.sender;
        let counted = s.gaps_counted_through.fetch_max(next - 1, Ordering::Relaxed);
        let Some((first, purged)) = newly_purged(counted, through, next) else {
            return;
        };
        s.metrics.stream_purged_unsent.inc_by(purged);
        s.purged.fetch_add(purged, Ordering::Relaxed);
        tracing::warn!(
            stream = %s.stream.settings.id,
            first,
            last = next - 1,
            "retention purged entries before this SIEM stream read them; its receiver does not get them"
        );
    }

    /// Formats and writes one page; what it covers joins the window.
    async fn write(&mut self, page: &[Entry]) -> Result<(), Ended> {
        let s = self.sender;
        let header = s.header();
        self.buf.clear();
        let mut through = self.position;
        let mut messages = 0u64;
        let now = s.clock.now();
        for entry in page {
            if self.buf.len() >= BATCH_BYTES {
                break;
            }
            if entry.seq > through + 1 {
                self.missed(through, entry.seq);
            }
            through = entry.seq;
            if !s.stream.settings.wants(&entry.event) {
                continue;
            }
            self.message.clear();
            siem::write_message(s.stream.settings.format, entry, &s.org_slug, &header, &mut self.message);
            siem::frame(&self.message, &mut self.buf);
            messages += 1;
            let lag_ms = now.millis() - entry.received_at.millis();
            s.metrics.stream_lag_seconds.observe(lag_ms.max(0) as f64 / 1000.0);
        }
        if !self.buf.is_empty() {
            let write = async {
                self.writer.write_all(&self.buf).await?;
                self.writer.flush().await
            };
            match tokio::time::timeout(s.config.write_timeout, write).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Ended::Failed(format!("writing to the receiver: {e}"))),
                Err(_) => {
                    return Err(Ended::Failed(format!(
                        "the receiver took nothing for {:?}: it is not reading",
                        s.config.write_timeout
                    )));
                }
            }
            s.metrics.stream_messages.inc_by(messages);
        }
        self.position = through;
        let at = self.now_ms();
        self.window.push(through, at);
        Ok(())
    }
}
