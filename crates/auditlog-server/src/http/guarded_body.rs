//! A request body read under the server's rules: it takes its room under
//! the memory budget before its first byte is read, it is cut off past its
//! route's size limit, and it must keep arriving at a minimum pace or be
//! dropped.
//!
//! The room is taken when the handler first reads the body, not when the
//! headers arrive, so a request refused by authentication or a rate limit
//! never holds any; it is held (in the [`Ticket`]) until the handler is
//! done, since the buffered body and what is parsed from it live that long.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use hyper::body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Why a body was cut off before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// More bytes than the route takes (a chunked body; a declared length
    /// over the limit is refused before reading).
    TooLarge,
    /// It stopped arriving, or arrived slower than the minimum pace.
    TooSlow,
    /// No room under the memory budget within the wait allowed.
    NoRoom,
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body cut off: {0:?}")]
    Cut(Cut),
    #[error(transparent)]
    Read(axum::Error),
}

/// How fast a body must arrive once reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// The whole body within this long.
    pub timeout: Duration,
    /// After `grace`, at least this many bytes per second on average since
    /// reading began; 0 for no minimum.
    pub min_rate: u64,
    pub grace: Duration,
}

impl Pace {
    /// By when more of the body must have arrived (or all of it), given
    /// that reading began at `start` and `received` bytes are in.
    pub fn deadline(&self, start: Instant, received: u64) -> Instant {
        let whole = start + self.timeout;
        if self.min_rate == 0 {
            return whole;
        }
        let earned = Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        whole.min(start + self.grace.saturating_add(earned))
    }
}

/// Bytes of request bodies that may be held at once, shared by every
/// request.
#[derive(Debug, Clone)]
pub struct Budget {
    bytes: Arc<Semaphore>,
    total: u32,
    /// How long a body waits for room before its request is refused.
    wait: Duration,
}

impl Budget {
    pub fn new(total: usize, wait: Duration) -> Self {
        // Room is taken in one `acquire_many`, which counts in u32.
        let total = u32::try_from(total).unwrap_or(u32::MAX).max(1);
        Self {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
            wait,
        }
    }

    /// Bytes not held by any request right now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// What a body of `bytes` reserves: a body larger than the whole budget
    /// takes all of it rather than waiting for ever.
    fn share(&self, bytes: u64) -> u32 {
        u32::try_from(bytes).unwrap_or(u32::MAX).min(self.total)
    }
}

/// What a request and its body share: why the body was cut off, if it
/// was, and the room it holds under the budget until the request is done.
#[derive(Debug, Default)]
pub struct Ticket {
    cut: OnceLock<Cut>,
    room: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Ticket {
    pub fn cut(&self) -> Option<Cut> {
        self.cut.get().copied()
    }

    /// Gives the room back to the budget.
    pub fn release(&self) {
        if let Ok(mut room) = self.room.lock() {
            room.take();
        }
    }

    fn hold(&self, permit: OwnedSemaphorePermit) {
        if let Ok(mut room) = self.room.lock() {
            *room = Some(permit);
        }
        // A poisoned lock drops the permit here: the room goes back early,
        // which is better than never.
    }
}

type Reservation = Pin<Box<dyn Future<Output = Option<OwnedSemaphorePermit>> + Send>>;

enum State {
    Unreserved,
    Reserving(Reservation),
    Reading {
        start: Instant,
        received: u64,
        timer: Pin<Box<Sleep>>,
    },
    Done,
}

pub struct GuardedBody {
    inner: Body,
    /// Bytes to reserve: the declared length, or the limit when none is.
    need: u64,
    limit: u64,
    budget: Budget,
    pace: Pace,
    ticket: Arc<Ticket>,
    state: State,
}

impl GuardedBody {
    pub fn new(inner: Body, need: u64, limit: u64, budget: Budget, pace: Pace, ticket: Arc<Ticket>) -> Self {
        Self {
            inner,
            need,
            limit,
            budget,
            pace,
            ticket,
            state: State::Unreserved,
        }
    }

    fn reserve(&self) -> Reservation {
        let (bytes, share, wait) = (
            self.budget.bytes.clone(),
            self.budget.share(self.need),
            self.budget.wait,
        );
        Box::pin(async move {
            match tokio::time::timeout(wait, bytes.acquire_many_owned(share)).await {
                Ok(Ok(permit)) => Some(permit),
                _ => None,
            }
        })
    }

    fn start_reading(&mut self) {
        let start = Instant::now();
        self.state = State::Reading {
            start,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(self.pace.deadline(start, 0))),
        };
    }

    fn cut(&mut self, cut: Cut) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let _ = self.ticket.cut.set(cut);
        self.state = State::Done;
        Poll::Ready(Some(Err(BodyError::Cut(cut))))
    }

    /// One step of reading, the budget's room held.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let State::Reading { start, received, timer } = &mut self.state else {
            return Poll::Ready(None);
        };
        match hyper::body::Body::poll_frame(Pin::new(&mut self.inner), cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *received += data.len() as u64;
                    if *received > self.limit {
                        return self.cut(Cut::TooLarge);
                    }
                    let next = self.pace.deadline(*start, *received);
                    timer.as_mut().reset(next);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.state = State::Done;
                Poll::Ready(Some(Err(BodyError::Read(e))))
            }
            Poll::Ready(None) => {
                self.state = State::Done;
                Poll::Ready(None)
            }
            Poll::Pending => {
                ready!(timer.as_mut().poll(cx));
                self.cut(Cut::TooSlow)
            }
        }
    }
}

impl hyper::body::Body for GuardedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Unreserved if this.need == 0 => this.start_reading(),
                State::Unreserved => this.state = State::Reserving(this.reserve()),
                State::Reserving(reservation) => match ready!(reservation.as_mut().poll(cx)) {
                    Some(permit) => {
                        this.ticket.hold(permit);
                        this.start_reading();
                    }
                    None => return this.cut(Cut::NoRoom),
                },
                State::Reading { .. } => return this.poll_read(cx),
                State::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done) || hyper::body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        hyper::body::Body::size_hint(&self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn without_a_minimum_rate_only_the_timeout_counts() {
        let start = Instant::now();
        let pace = Pace {
            timeout: 20 * SECOND,
            min_rate: 0,
            grace: 5 * SECOND,
        };
        assert_eq!(pace.deadline(start, 0), start + 20 * SECOND);
        assert_eq!(pace.deadline(start, 1 << 30), start + 20 * SECOND);
    }

    #[test]
    fn the_grace_comes_first_then_each_byte_earns_time() {
        let start = Instant::now();
        let pace = Pace {
            timeout: 60 * SECOND,
            min_rate: 1000,
            grace: 5 * SECOND,
        };
        assert_eq!(pace.deadline(start, 0), start + 5 * SECOND);
        assert_eq!(pace.deadline(start, 2000), start + 7 * SECOND);
        // Fast enough for ever is still bounded by the timeout.
        assert_eq!(pace.deadline(start, 1_000_000), start + 60 * SECOND);
    }

    #[test]
    fn a_body_larger_than_the_budget_reserves_all_of_it() {
        let budget = Budget::new(1000, SECOND);
        assert_eq!(budget.share(10), 10);
        assert_eq!(budget.share(5000), 1000);
        assert_eq!(budget.share(u64::MAX), 1000);
    }
}
