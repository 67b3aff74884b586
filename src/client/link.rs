//! The client's connection: a TCP socket, or TLS over one.
//!
//! Invariant: above this module a connection behaves as a socket whatever carries it:
//! it can be cloned for a reader thread, half-closed, and read to its end. TLS is carried
//! by a bridge thread between the TLS session and one end of a local socket pair, so the
//! synchronous client keeps its simple threads, and a half-close on our end becomes the
//! TLS close_notify on the wire (and the server's close, the end of our reads).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};

use super::trust::Trust;

pub enum Link {
    Tcp(TcpStream),
    Tls(UnixStream),
}

impl Link {
    pub fn try_clone(&self) -> io::Result<Link> {
        Ok(match self {
            Link::Tcp(s) => Link::Tcp(s.try_clone()?),
            Link::Tls(s) => Link::Tls(s.try_clone()?),
        })
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Link::Tcp(s) => s.shutdown(how),
            Link::Tls(s) => s.shutdown(how),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Link::Tls(_))
    }

    /// TLS over `tcp` to `host` (the name as typed, checked against a CA's certificate;
    /// with trust on first use or a pin, only for SNI), judged by `trust` for `target`
    /// (HOST:PORT as typed) before anything is sent.
    pub fn tls(
        tcp: TcpStream,
        host: &str,
        target: &str,
        trust: &Trust,
        deadline: Duration,
    ) -> anyhow::Result<Link> {
        let connector = TlsConnector::from(Arc::new(trust.client_config()?));
        let name = ServerName::try_from(host.to_owned())
            .or_else(|_| ServerName::try_from("localhost"))
            .expect("localhost is a name");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("could not start TLS")?;
        tcp.set_nonblocking(true)?;
        let session = runtime.block_on(async {
            let tcp = tokio::net::TcpStream::from_std(tcp)?;
            match tokio::time::timeout(deadline, connector.connect(name, tcp)).await {
                Ok(session) => session,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no TLS handshake within {}",
                        humantime::format_duration(deadline)
                    ),
                )),
            }
        });
        let mut session = session.map_err(|e| {
            // Plain bytes where a TLS record should be: most likely a server without TLS.
            let not_tls = e.kind() == io::ErrorKind::UnexpectedEof
                || e.get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .is_some_and(|e| matches!(e, rustls::Error::InvalidMessage(_)));
            let hint = if not_tls {
                " (does the server speak TLS? try without --tls)"
            } else {
                ""
            };
            anyhow::anyhow!("TLS with {target} failed: {e}{hint}")
        })?;
        let cert = session
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .context("the server presented no certificate")?;
        trust.accept(target, cert)?;

        let (ours, bridge) = UnixStream::pair()?;
        bridge.set_nonblocking(true)?;
        thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(mut bridge) = tokio::net::UnixStream::from_std(bridge) else {
                    return;
                };
                if let Err(e) = tokio::io::copy_bidirectional(&mut bridge, &mut session).await {
                    log::debug!("tls: {e}");
                }
            });
        });
        Ok(Link::Tls(ours))
    }
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Link::Tcp(s) => s.read(buf),
            Link::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Tcp(s) => s.write(buf),
            Link::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Link::Tcp(s) => s.flush(),
            Link::Tls(s) => s.flush(),
        }
    }
}
