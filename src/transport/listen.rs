//! Binding the listening socket, moving on to the next port when one is taken (lab task 6).

use std::io;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use log::info;
use tokio::net::{TcpListener, lookup_host};

/// Listens on `host:port`; when that port is in use, tries the following ones, up to
/// `retries` more. Only "address in use" moves on: any other error (an address that is
/// not on this machine, a port that needs privileges) is reported at once.
pub async fn bind(host: &str, port: u16, retries: u16) -> anyhow::Result<TcpListener> {
    let addrs: Vec<SocketAddr> = lookup_host((host, port))
        .await
        .with_context(|| format!("could not resolve {host}"))?
        .collect();
    // Port 0 means "any free port": there is nothing to move on to.
    let last = if port == 0 {
        0
    } else {
        port.saturating_add(retries)
    };
    for candidate in port..=last {
        match bind_any(&addrs, candidate).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && candidate < last => {
                info!("port {candidate} is in use; trying {}", candidate + 1);
            }
            Err(e) => {
                let tried = match candidate - port {
                    0 => String::new(),
                    n => format!(" (and {n} ports before it were in use)"),
                };
                let hint = hint(e.kind(), candidate).unwrap_or_default();
                return Err(e).with_context(|| {
                    format!("could not listen on {host}:{candidate}{tried}{hint}")
                });
            }
        }
    }
    bail!("no port to try")
}

/// What to do about a bind error, when there is something obvious.
fn hint(kind: io::ErrorKind, port: u16) -> Option<&'static str> {
    (kind == io::ErrorKind::PermissionDenied && port < 1024)
        .then_some(" (ports below 1024 need administrator rights; choose one from 1024 up)")
}

/// Binds the first of `addrs` that accepts `port`. A host with several addresses (an
/// IPv6 and an IPv4 one) counts as in use when any of them is.
async fn bind_any(addrs: &[SocketAddr], port: u16) -> io::Result<TcpListener> {
    let mut first_err = None;
    for addr in addrs {
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Err(e),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_privileged_port_refused_gets_a_hint() {
        let said = hint(io::ErrorKind::PermissionDenied, 80).unwrap();
        assert!(said.contains("below 1024"), "{said}");
        assert_eq!(hint(io::ErrorKind::PermissionDenied, 8080), None);
        assert_eq!(hint(io::ErrorKind::AddrInUse, 80), None);
    }

    #[tokio::test]
    async fn moves_past_a_taken_port() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = taken.local_addr().unwrap().port();
        let got = bind("127.0.0.1", port, 50).await.unwrap();
        let got = got.local_addr().unwrap().port();
        assert!(
            got > port && got <= port.saturating_add(50),
            "{port} -> {got}"
        );
    }

    #[tokio::test]
    async fn no_retries_means_the_taken_port_is_an_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = bind("127.0.0.1", port, 0).await.unwrap_err();
        let io = err.downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(
            err.to_string(),
            format!("could not listen on 127.0.0.1:{port}")
        );
    }

    #[tokio::test]
    async fn an_address_not_on_this_machine_fails_at_once() {
        // 192.0.2.1 is reserved for documentation: never a local address.
        let err = bind("192.0.2.1", 9090, 50).await.unwrap_err();
        let io = err.downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::AddrNotAvailable);
        assert_eq!(err.to_string(), "could not listen on 192.0.2.1:9090");
    }
}
