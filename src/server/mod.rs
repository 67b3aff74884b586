//! The accept loop shared by every server mode.
//!
//! Invariant: a connection is accepted only with a permit in hand. The permit is taken
//! before `accept`, so a full server leaves new clients in the kernel's backlog instead
//! of accepting and dropping them, and it is released when the connection's task ends,
//! however it ends, or at once when the connection is refused for its source's cap.
//!
//! What happens on a connection is the [`Service`]'s business: messages of some codec
//! answered by a [`Handler`](crate::handler::Handler) ([`Conversation`]), or raw bytes
//! ([`RawEcho`]), either of them inside TLS ([`Tls`]). One connection's error is logged with its peer address and never
//! reaches the loop.

mod admission;
mod conversation;
mod raw;
mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use log::{error, info, warn};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::logging::Throttle;
use crate::transport::{Ends, Source, Stream};
use admission::PerSource;

pub use conversation::{Conversation, INTERNAL_ERROR, SHUTDOWN_NOTICE};
pub use raw::RawEcho;
pub use tls::Tls;

/// Longest pause after failed accepts in a row (out of file descriptors, say).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// Refusals (over the per-source cap) being told at once, and how long each may take.
const MAX_REFUSALS: usize = 64;
const REFUSAL_TIME: Duration = Duration::from_millis(250);

/// What a server does with one accepted connection.
pub trait Service: Send + Sync + 'static {
    /// What `serve_connection` counts in its [`Tally`]: "message", or "byte".
    const UNIT: &'static str;

    /// Serves `stream` until the peer leaves, an error, or `shutdown` is cancelled; in the
    /// last case it should tell the peer and return promptly. Counts what it receives and
    /// sends in `tally`, however the connection ends.
    fn serve_connection<S: Stream>(
        &self,
        stream: S,
        ends: Ends,
        shutdown: CancellationToken,
        tally: &mut Tally,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Tells a client it is not served, and why, as well as its protocol allows, then
    /// closes. By default: closes without a word.
    fn refuse<S: Stream>(&self, stream: S, why: String) -> impl Future<Output = ()> + Send {
        let _ = why;
        async move { drop(stream) }
    }
}

/// What crossed one connection, in its service's unit, for the line that logs its end:
/// the evidence that a client was served, and how much.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub received: u64,
    pub sent: u64,
}

impl Tally {
    /// "3 messages in, 4 out".
    pub fn describe(&self, unit: &str) -> String {
        let plural = if self.received == 1 { "" } else { "s" };
        format!("{} {unit}{plural} in, {} out", self.received, self.sent)
    }
}

/// Settings of the accept loop itself.
#[derive(Clone, Copy, Debug)]
pub struct ServerConfig {
    pub max_connections: usize,
    /// Connections one source (an IPv4 address, an IPv6 /64) may have open at once;
    /// `None`: no cap.
    pub max_per_source: Option<usize>,
    /// After shutdown begins, how long connections get to finish before they are dropped.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
            max_per_source: None,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Accepts connections on `listener` and serves each with `service` until `shutdown`
/// completes; then stops accepting, asks every connection to finish, and waits for them
/// for at most `config.shutdown_grace`.
pub async fn serve<P: Service>(
    listener: TcpListener,
    service: P,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let local = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let service = Arc::new(service);
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let tracker = TaskTracker::new();
    let stopping = CancellationToken::new();
    let per_source = PerSource::new(config.max_per_source);
    let over_cap = Arc::new(Throttle::new(Duration::from_secs(60)));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    tokio::pin!(shutdown);

    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &permits) => accepted,
        };
        let (stream, peer, permit) = accepted;
        let ends = Ends {
            peer,
            local: stream.local_addr().unwrap_or(local),
        };
        // Small messages go out at once rather than waiting for Nagle's timer.
        let _ = stream.set_nodelay(true);
        let service = Arc::clone(&service);
        let source = Source::of(peer.ip());
        let slot = match per_source.admit(source) {
            Ok(slot) => slot,
            Err(cap) => {
                if over_cap.allow(source) {
                    warn!(
                        "{source}: connection refused: {cap} already open from this \
                         address (logged once a minute per address)"
                    );
                }
                // A refused connection takes none of the server's places, so that
                // refusals cannot crowd out the clients being served; refusals have a
                // small budget of their own, past which the connection is just closed.
                drop(permit);
                let Ok(refusal) = Arc::clone(&refusals).try_acquire_owned() else {
                    continue;
                };
                let why = format!(
                    "error: too many connections from your address ({cap} open); \
                     closing the connection"
                );
                tracker.spawn(async move {
                    let _refusal = refusal;
                    let _ = timeout(REFUSAL_TIME, service.refuse(stream, why)).await;
                });
                continue;
            }
        };
        // A token of its own: a connection waits on it between every two messages, and
        // waiting on the shared one would take one lock for every message of every
        // connection (measured: 5-8% more CPU per message at 1000 connections).
        let stopping = stopping.child_token();
        tracker.spawn(async move {
            let _held = (permit, slot);
            let started = Instant::now();
            info!("{peer}: connected");
            let mut tally = Tally::default();
            let outcome = service
                .serve_connection(stream, ends, stopping, &mut tally)
                .await;
            let took = humantime::format_duration(round_ms(started.elapsed()));
            let tally = tally.describe(P::UNIT);
            match outcome {
                Ok(()) => info!("{peer}: closed after {took}; {tally}"),
                Err(e) => warn!("{peer}: closed after {took}; {tally}: {e:#}"),
            }
        });
    }

    drop(listener);
    let open = tracker.len();
    info!("shutting down: {open} connection(s) open");
    stopping.cancel();
    tracker.close();
    if timeout(config.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            "{} connection(s) still open after {}; dropping them",
            tracker.len(),
            humantime::format_duration(config.shutdown_grace)
        );
    }
    info!("stopped (pid {})", std::process::id());
}

/// Waits for a free permit, then for a connection. Errors that concern one connection
/// only are skipped; others (out of file descriptors, of memory) are logged and retried
/// after a pause that doubles each time, so the loop neither spins nor gives up.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> (TcpStream, SocketAddr, tokio::sync::OwnedSemaphorePermit) {
    let permit = Arc::clone(permits)
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    let mut backoff = Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => return (stream, peer, permit),
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                error!(
                    "accept failed: {e}; retrying in {}",
                    humantime::format_duration(backoff)
                );
                sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }
}

/// Errors of one half-open connection, which say nothing about the listener.
fn is_connection_error(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX))
}
