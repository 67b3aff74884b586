//! Raw echo (`--codec raw`): bytes back verbatim, no framing, no greeting, so that nc,
//! telnet, socat and standard echo load generators can talk to the server.
//!
//! Invariant: an idle connection owns no read buffer. It waits for its next bytes with a
//! small one that is part of its task; the 8 KiB buffer is taken when bytes arrive, kept
//! while they keep coming, and released once the stream has nothing more to give at
//! once. Thousands of idle connections stay cheap, and a busy one allocates nothing per
//! read.

use std::future::Future;
use std::io::ErrorKind;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use anyhow::Context as _;
use humantime::format_duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::{Service, Tally};
use crate::transport::{Ends, Stream};

/// The buffer of a busy connection.
const CHUNK: usize = 8 * 1024;
/// The buffer an idle connection waits with.
const FIRST: usize = 256;

pub struct RawEcho {
    pub idle_timeout: Duration,
    /// Longest a write may wait for a peer that does not read.
    pub write_timeout: Duration,
}

impl Service for RawEcho {
    const UNIT: &'static str = "byte";

    async fn serve_connection<S: Stream>(
        &self,
        mut stream: S,
        _ends: Ends,
        shutdown: CancellationToken,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        // Registered once: see the conversation loop.
        let stopping = shutdown.cancelled();
        tokio::pin!(stopping);
        let mut buf = Vec::new();
        loop {
            let n = if buf.is_empty() {
                let mut first = [0u8; FIRST];
                let read = tokio::select! {
                    read = timeout(self.idle_timeout, stream.read(&mut first)) => read,
                    () = &mut stopping => return Ok(()),
                };
                let n = read
                    .map_err(|_| {
                        anyhow::anyhow!("no input for {}", format_duration(self.idle_timeout))
                    })?
                    .context("reading")?;
                if n == 0 {
                    // The peer has finished; so have we (over TLS: close_notify).
                    let _ = stream.shutdown().await;
                    return Ok(());
                }
                tally.received += n as u64;
                self.write(&mut stream, &first[..n]).await?;
                tally.sent += n as u64;
                buf = vec![0u8; CHUNK];
                continue;
            } else {
                match read_now(&mut stream, &mut buf) {
                    Some(Ok(0)) => {
                        let _ = stream.shutdown().await;
                        return Ok(());
                    }
                    Some(Ok(n)) => n,
                    Some(Err(e)) => return Err(e).context("reading"),
                    // Drained: go idle without the buffer.
                    None => {
                        buf = Vec::new();
                        continue;
                    }
                }
            };
            tally.received += n as u64;
            self.write(&mut stream, &buf[..n]).await?;
            tally.sent += n as u64;
        }
    }
}

impl RawEcho {
    async fn write<S: Stream>(&self, stream: &mut S, bytes: &[u8]) -> anyhow::Result<()> {
        timeout(self.write_timeout, stream.write_all(bytes))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "peer did not read for {}",
                    format_duration(self.write_timeout)
                )
            })?
            .context("writing")
    }
}

/// A read that does not wait: `None` if the stream has nothing to give right now.
fn read_now<S: Stream>(stream: &mut S, buf: &mut [u8]) -> Option<std::io::Result<usize>> {
    let read = pin!(stream.read(buf));
    match read.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Err(e)) if e.kind() == ErrorKind::WouldBlock => None,
        Poll::Ready(result) => Some(result),
        Poll::Pending => None,
    }
}
