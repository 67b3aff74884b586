//! `--tls`: any service, spoken inside TLS.
//!
//! Invariant: the handshake is part of admission. It runs in the connection's own task,
//! holding the connection's place and its address's, within its own deadline, so a client
//! that never finishes one (or sends plain text to a TLS port) is logged and closed like
//! any other misbehaving client, and disturbs no one else.

use std::time::Duration;

use anyhow::Context;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::{Service, Tally};
use crate::transport::{Ends, Stream};

pub struct Tls<S> {
    inner: S,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl<S> Tls<S> {
    pub fn new(inner: S, acceptor: TlsAcceptor, handshake_timeout: Duration) -> Self {
        Tls {
            inner,
            acceptor,
            handshake_timeout,
        }
    }
}

impl<S: Service> Service for Tls<S> {
    const UNIT: &'static str = S::UNIT;

    async fn serve_connection<T: Stream>(
        &self,
        stream: T,
        ends: Ends,
        shutdown: CancellationToken,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        let handshake = timeout(self.handshake_timeout, self.acceptor.accept(stream));
        let tls = tokio::select! {
            done = handshake => done
                .map_err(|_| anyhow::anyhow!(
                    "no TLS handshake within {}",
                    humantime::format_duration(self.handshake_timeout)
                ))?
                .context("TLS handshake failed")?,
            () = shutdown.cancelled() => return Ok(()),
        };
        self.inner
            .serve_connection(tls, ends, shutdown, tally)
            .await
    }

    /// Refused inside TLS, so that the client can read why; the caller bounds the time.
    async fn refuse<T: Stream>(&self, stream: T, why: String) {
        if let Ok(tls) = self.acceptor.accept(stream).await {
            self.inner.refuse(tls, why).await;
        }
    }
}
