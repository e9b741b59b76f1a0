//! Hearing about new deliveries from every process sharing the database.
//!
//! An append that writes deliveries signals `auditlog_deliveries` with
//! `pg_notify` (sent on commit). One dedicated connection per store LISTENs
//! on it and counts the signals in a `watch` channel, which any number of
//! dispatcher workers wait on, each remembering the count it has seen, so a
//! signal that arrives while a worker is busy is not lost. The connection is
//! opened on first use (a command-line run never pays for it), reopened with
//! backoff if it drops (counting a signal then, as some may have been
//! missed), and closed once the store is gone.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, Config};

use crate::append::DELIVERIES_CHANNEL;
use crate::tls::MakeTls;

pub struct Signals {
    config: Config,
    /// The pool's TLS, so this connection is protected as the others are.
    tls: MakeTls,
    count: watch::Receiver<u64>,
    /// Taken by the listening task when it starts.
    sender: Mutex<Option<watch::Sender<u64>>>,
}

impl Signals {
    pub fn new(config: Config, tls: MakeTls) -> Self {
        let (sender, count) = watch::channel(0);
        Self {
            config,
            tls,
            count,
            sender: Mutex::new(Some(sender)),
        }
    }

    /// Waits until more than `seen` signals were counted; returns the count.
    pub async fn wait(&self, seen: u64) -> u64 {
        let sender = self.sender.lock().ok().and_then(|mut s| s.take());
        if let Some(sender) = sender {
            tokio::spawn(listen(self.config.clone(), self.tls.clone(), sender));
        }
        let mut count = self.count.clone();
        let counted = count.wait_for(|n| *n > seen).await.map(|n| *n);
        match counted {
            Ok(n) => n,
            // The listener is gone only with the store; nothing more will come.
            Err(_) => std::future::pending().await,
        }
    }
}

async fn listen(config: Config, tls: MakeTls, sender: watch::Sender<u64>) {
    const FIRST_PAUSE: Duration = Duration::from_millis(500);
    let mut pause = FIRST_PAUSE;
    loop {
        let started = tokio::time::Instant::now();
        tokio::select! {
            () = sender.closed() => return,
            outcome = listen_once(&config, tls.clone(), &sender) => match outcome {
                Ok(()) => tracing::warn!("the connection listening for delivery signals closed; reopening"),
                Err(e) => tracing::warn!(error = %e, "listening for delivery signals failed; retrying"),
            }
        }
        // A connection that lived a while dropped for a reason of its own:
        // start the backoff over.
        if started.elapsed() > Duration::from_secs(60) {
            pause = FIRST_PAUSE;
        }
        tokio::select! {
            () = sender.closed() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// One connection's life: LISTEN, then count signals until it drops.
async fn listen_once(config: &Config, tls: MakeTls, sender: &watch::Sender<u64>) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tls).await?;
    let bump = || sender.send_modify(|n| *n += 1);
    // The connection must be polled for the LISTEN below to complete, and
    // afterwards it is where the signals arrive.
    let messages = async {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => bump(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    };
    let subscribe = async {
        client.batch_execute(&format!("LISTEN {DELIVERIES_CHANNEL}")).await?;
        // Signals sent before LISTEN took effect were missed: count one.
        bump();
        // Keep the client, and so the connection, open.
        std::future::pending::<Result<(), tokio_postgres::Error>>().await
    };
    tokio::select! {
        r = messages => r,
        r = subscribe => r,
    }
}
