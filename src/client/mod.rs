//! `netlab connect`: talk to a server (lab task 10).
//!
//! - [`conversation`]: framed or line messages, in lock-step, with the greeting and reply
//!   timeouts and the rules for a normal end.
//! - [`raw`]: any TCP service, as nc would.
//! - [`token_file`]: the session tokens kept per server.
//! - [`link`] and [`trust`]: the connection, plain or TLS, and which certificates it
//!   accepts.
//!
//! Invariant: the client never waits for ever and never fails silently. Whatever ends the
//! conversation other than the user is one line on stderr and exit status 1.

pub mod conversation;
pub mod link;
pub mod raw;
pub mod token_file;
pub mod trust;

use std::io::{self, IsTerminal};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::wire::CodecKind;
use link::Link;
use trust::Trust;

/// Typed on a line of its own, ends the conversation.
pub const QUIT: &str = "/quit";

/// How long to wait for a server to answer the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ClientConfig {
    pub host: String,
    pub port: u16,
    /// How messages travel: framed, lines, or raw bytes.
    pub codec: CodecKind,
    pub max_frame: usize,
    /// Source address to connect from.
    pub bind: Option<IpAddr>,
    /// Where session tokens are kept; `None`: the default place.
    pub token_file: Option<PathBuf>,
    /// Longest wait for the server's first message.
    pub greeting_timeout: Duration,
    /// Longest wait for the answer to a message, or for the server's close after the end
    /// of input.
    pub reply_timeout: Duration,
    /// With TLS, how the server's certificate is judged; `None`: plain TCP.
    pub tls: Option<Trust>,
}

pub fn run(config: &ClientConfig) -> anyhow::Result<()> {
    let target = display_addr(&config.host, config.port);
    let stream = connect(config).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::ConnectionRefused => "; is a server running on it?",
            io::ErrorKind::TimedOut => "; is the host reachable?",
            _ => "",
        };
        anyhow::anyhow!("could not connect to {target}: {e}{hint}")
    })?;
    let _ = stream.set_nodelay(true);
    let server = stream.peer_addr()?;
    log::debug!("connected to {server} from {}", stream.local_addr()?);
    let link = match &config.tls {
        None => Link::Tcp(stream),
        Some(trust) => Link::tls(stream, &config.host, &target, trust, CONNECT_TIMEOUT)?,
    };
    let over = if link.is_tls() { " over TLS" } else { "" };
    let interactive = io::stdin().is_terminal();
    match config.codec {
        CodecKind::Raw => {
            if interactive {
                eprintln!("connected to {server}{over}; bytes pass as they are; Ctrl-D to leave");
            }
            raw::run(link, server)
        }
        CodecKind::Framed | CodecKind::Lines => {
            if interactive {
                eprintln!("connected to {server}{over}; {QUIT} or Ctrl-D to leave");
            }
            conversation::run(link, server, config, interactive)
        }
    }
}

/// Connects to the first address of the host that answers, from `config.bind` if set
/// (only addresses of the same family as the bind address are tried).
fn connect(config: &ClientConfig) -> io::Result<TcpStream> {
    let mut last_err = None;
    for addr in (config.host.as_str(), config.port).to_socket_addrs()? {
        let attempt = match config.bind {
            None => TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT),
            Some(local) if local.is_ipv4() != addr.is_ipv4() => continue,
            Some(local) => connect_from(local, addr),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the host has no address of the --bind address's family",
        )
    }))
}

fn connect_from(local: IpAddr, remote: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(remote), Type::STREAM, None)?;
    socket
        .bind(&SocketAddr::new(local, 0).into())
        .map_err(|e| io::Error::new(e.kind(), format!("could not bind to {local}: {e}")))?;
    socket.connect_timeout(&remote.into(), CONNECT_TIMEOUT)?;
    Ok(socket.into())
}

/// `host:port`, with brackets around an IPv6 address.
fn display_addr(host: &str, port: u16) -> String {
    match host.parse() {
        Ok(ip) => SocketAddr::new(ip, port).to_string(),
        Err(_) => format!("{host}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_shown_as_typed_with_brackets_for_ipv6() {
        assert_eq!(display_addr("127.0.0.1", 9090), "127.0.0.1:9090");
        assert_eq!(display_addr("::1", 9090), "[::1]:9090");
        assert_eq!(display_addr("localhost", 9090), "localhost:9090");
    }
}
