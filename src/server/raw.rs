//! Raw echo (`--codec raw`): bytes back verbatim, no framing, no greeting, so that nc,
//! telnet, socat and standard echo load generators can talk to the server.
//!
//! Invariant: an idle connection owns no buffer. The 8 KiB buffer is taken when bytes
//! arrive, kept while they keep coming, and released once the socket has nothing more to
//! read, which keeps thousands of idle connections cheap without an allocation per read.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use humantime::format_duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::Protocol;

const CHUNK: usize = 8 * 1024;

pub struct RawEcho {
    pub idle_timeout: Duration,
    /// Longest a write may wait for a peer that does not read.
    pub write_timeout: Duration,
}

impl Protocol for RawEcho {
    async fn serve_connection(
        &self,
        mut stream: TcpStream,
        _peer: SocketAddr,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let _ = stream.set_nodelay(true);
        // Registered once: see the framed loop.
        let stopping = shutdown.cancelled();
        tokio::pin!(stopping);
        let mut buf = Vec::new();
        loop {
            if buf.is_empty() {
                let ready = tokio::select! {
                    ready = timeout(self.idle_timeout, stream.readable()) => ready,
                    () = &mut stopping => return Ok(()),
                };
                ready
                    .map_err(|_| {
                        anyhow::anyhow!("no input for {}", format_duration(self.idle_timeout))
                    })?
                    .context("waiting for input")?;
                buf = vec![0u8; CHUNK];
            }
            let n = match stream.try_read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // Drained: go idle without the buffer.
                    buf = Vec::new();
                    continue;
                }
                Err(e) => return Err(e).context("reading"),
            };
            timeout(self.write_timeout, stream.write_all(&buf[..n]))
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "peer did not read for {}",
                        format_duration(self.write_timeout)
                    )
                })?
                .context("writing")?;
        }
    }
}
