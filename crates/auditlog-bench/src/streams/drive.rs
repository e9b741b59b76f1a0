//! The load generator of the streams section, on a runtime of its own so
//! its CPU time is told apart from the server's: ingest paced to a rate
//! (open loop: each request leaves when it is due, whether or not earlier
//! ones were answered) and ingest as fast as a few clients can send
//! (closed loop: each sends its next request when its last is answered).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auditlog_domain::{Clock, SystemClock};
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::AnyError;
use crate::harness::{RNG_SEED, event_json, http_client};
use crate::seed;

/// The names of the load generator's threads.
pub(crate) const THREAD_NAME: &str = "bench-client";
/// Requests in flight at most in the open loop; past it the schedule slips.
const MAX_IN_FLIGHT: usize = 1024;

/// A runtime for the load generator, two threads named [`THREAD_NAME`].
pub(crate) struct Generator {
    rt: Option<tokio::runtime::Runtime>,
}

impl Generator {
    pub(crate) fn new() -> Result<Self, AnyError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(THREAD_NAME)
            .enable_all()
            .build()?;
        Ok(Self { rt: Some(rt) })
    }

    /// Runs `work` on the generator's runtime and waits for it.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, AnyError>> + Send + 'static,
    ) -> Result<T, AnyError> {
        let rt = self.rt.as_ref().ok_or("the load generator has stopped")?;
        rt.spawn(work).await?
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        // A runtime may not be dropped where the bench's runtime blocks on
        // it; its threads are left to end on their own.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Where ingest goes.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) url: reqwest::Url,
    pub(crate) auth: HeaderValue,
}

/// What a load sent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sent {
    /// Entries in the requests answered 201.
    pub(crate) entries: usize,
    pub(crate) failed_requests: usize,
    pub(crate) elapsed: Duration,
}

impl Sent {
    pub(crate) fn per_sec(&self) -> f64 {
        self.entries as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// `count` distinct requests of `events` entries each, sent round-robin,
/// with no `timestamp`: the server stamps each entry as it arrives, as
/// live ingest is.
pub(crate) fn bodies(events: usize, count: usize) -> Result<Arc<Vec<Bytes>>, AnyError> {
    let now = SystemClock.now();
    let entries = seed::ingestible_entries(count * events, now.minus_days(1), now, RNG_SEED + 11);
    let bodies = entries
        .chunks(events)
        .map(|chunk| {
            let events: Vec<Value> = chunk
                .iter()
                .map(|e| {
                    let mut v = event_json(e);
                    if let Some(fields) = v.as_object_mut() {
                        fields.remove("timestamp");
                    }
                    v
                })
                .collect();
            Ok(Bytes::from(serde_json::to_vec(&json!({ "events": events }))?))
        })
        .collect::<Result<Vec<_>, AnyError>>()?;
    Ok(Arc::new(bodies))
}

fn request(target: &Target, body: Bytes) -> reqwest::Request {
    let mut request = reqwest::Request::new(reqwest::Method::POST, target.url.clone());
    request.headers_mut().insert(AUTHORIZATION, target.auth.clone());
    request
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    *request.body_mut() = Some(body.into());
    request
}

/// Whether ingest answered 201, its body read.
async fn accepted(answer: reqwest::Result<reqwest::Response>) -> bool {
    match answer {
        Ok(resp) => resp.status() == StatusCode::CREATED && resp.bytes().await.is_ok(),
        Err(_) => false,
    }
}

/// Open loop: `rate` entries a second for `seconds`, as requests of
/// `per_request` entries each sent when due.
pub(crate) async fn paced(
    target: Target,
    bodies: Arc<Vec<Bytes>>,
    per_request: usize,
    rate: u32,
    seconds: u32,
) -> Result<Sent, AnyError> {
    let client = http_client(Some(Duration::from_secs(60)))?;
    let requests = u64::from(seconds) * u64::from(rate) / per_request as u64;
    let period = Duration::from_secs_f64(per_request as f64 / f64::from(rate));
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..requests {
        tokio::time::sleep_until((start + period.mul_f64(i as f64)).into()).await;
        let permit = permits.clone().acquire_owned().await?;
        let request = request(&target, bodies[i as usize % bodies.len()].clone());
        let (client, accepted) = (client.clone(), accepted.clone());
        tasks.spawn(async move {
            if self::accepted(client.execute(request).await).await {
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let ok = accepted.load(Ordering::Relaxed);
    Ok(Sent {
        entries: ok * per_request,
        failed_requests: requests as usize - ok,
        elapsed: start.elapsed(),
    })
}

/// Closed loop: `clients` clients each send requests of `per_request`
/// entries back to back for `seconds`.
pub(crate) async fn closed(
    target: Target,
    bodies: Arc<Vec<Bytes>>,
    per_request: usize,
    clients: usize,
    seconds: u32,
) -> Result<Sent, AnyError> {
    let deadline = Instant::now() + Duration::from_secs(u64::from(seconds));
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (client, target, bodies, next) = (
            http_client(Some(Duration::from_secs(120)))?,
            target.clone(),
            bodies.clone(),
            next.clone(),
        );
        workers.spawn(async move {
            let (mut ok, mut failed) = (0usize, 0usize);
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let request = request(&target, bodies[i % bodies.len()].clone());
                if accepted(client.execute(request).await).await {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            (ok, failed)
        });
    }
    let mut sent = Sent::default();
    while let Some(done) = workers.join_next().await {
        let (ok, failed) = done?;
        sent.entries += ok * per_request;
        sent.failed_requests += failed;
    }
    sent.elapsed = start.elapsed();
    Ok(sent)
}
