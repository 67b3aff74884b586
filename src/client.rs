//! `netlab connect`: the conversation client (lab task 10).
//!
//! Invariant: every server message is shown, in order, as soon as it arrives, and
//! nothing the user typed is lost at the end: end of input and `/quit` half-close the
//! connection, and the client keeps showing replies until the server closes its side.
//!
//! Two plain threads feed one channel, one reading server messages and one reading
//! stdin lines, so a message the server sends while the user is typing (a shutdown notice,
//! say) is shown at once. The main thread owns the socket's writing half.

use std::io::{self, BufRead, IsTerminal, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use socket2::{Domain, Socket, Type};

use crate::frame::{FrameError, RecvMsg, SendMsg};

/// Typed on a line of its own, ends the conversation.
pub const QUIT: &str = "/quit";

pub struct ClientConfig {
    pub host: String,
    pub port: u16,
    pub max_frame: usize,
    /// Source address to connect from.
    pub bind: Option<IpAddr>,
}

/// How long to wait for a server to answer the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

enum Event {
    Message(String),
    ServerClosed,
    ServerFailed(FrameError),
    Line(String),
    InputEnded,
    InputFailed(io::Error),
}

pub fn run(config: &ClientConfig) -> anyhow::Result<()> {
    let stream = connect(config).with_context(|| {
        format!(
            "could not connect to {}",
            display_addr(&config.host, config.port)
        )
    })?;
    let _ = stream.set_nodelay(true);
    let server = stream.peer_addr()?;
    log::debug!("connected to {server} from {}", stream.local_addr()?);
    let interactive = io::stdin().is_terminal();
    if interactive {
        eprintln!("connected to {server}; {QUIT} or Ctrl-D to leave");
    }

    let (events, inbox) = mpsc::channel();
    spawn_receiver(stream.try_clone()?, config.max_frame, events.clone());
    spawn_stdin_reader(events);

    let mut stream = stream;
    let mut out = io::stdout().lock();
    let mut sending = true;
    for event in inbox {
        match event {
            Event::Message(text) => writeln!(out, "{text}")?,
            Event::ServerClosed => {
                log::debug!("{server} closed the connection");
                return Ok(());
            }
            Event::ServerFailed(e) => {
                return Err(e).with_context(|| format!("connection to {server} failed"));
            }
            Event::Line(_) if !sending => {}
            // Like the end of input, so that replies to lines typed ahead still show.
            Event::Line(line) if line.trim() == QUIT => sending = stop_sending(&stream),
            Event::Line(line) => match stream.send_msg_max(&line, config.max_frame) {
                Ok(()) => {}
                Err(e @ FrameError::TooLarge { .. }) => eprintln!("not sent: {e}"),
                // The server has gone; the receiver will say how, so wait for its event.
                Err(_) => sending = false,
            },
            Event::InputEnded => sending = stop_sending(&stream),
            Event::InputFailed(e) => {
                return Err(e).context("could not read standard input");
            }
        }
    }
    Ok(())
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

/// Half-closes the connection: the server sees the end of the conversation after the
/// last line sent, answers what it has, and closes its side, which ends the client.
fn stop_sending(stream: &TcpStream) -> bool {
    let _ = stream.shutdown(Shutdown::Write);
    false
}

fn spawn_receiver(mut stream: TcpStream, max_frame: usize, events: mpsc::Sender<Event>) {
    thread::spawn(move || {
        loop {
            let event = match stream.recv_msg_max(max_frame) {
                Ok(Some(text)) => Event::Message(text),
                Ok(None) => Event::ServerClosed,
                Err(e) => Event::ServerFailed(e),
            };
            let last = !matches!(event, Event::Message(_));
            if events.send(event).is_err() || last {
                return;
            }
        }
    });
}

fn spawn_stdin_reader(events: mpsc::Sender<Event>) {
    thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let event = match line {
                Ok(line) => Event::Line(line),
                Err(e) => Event::InputFailed(e),
            };
            let failed = matches!(event, Event::InputFailed(_));
            if events.send(event).is_err() || failed {
                return;
            }
        }
        let _ = events.send(Event::InputEnded);
    });
}

/// `host:port`, with brackets around an IPv6 address.
fn display_addr(host: &str, port: u16) -> String {
    match host.parse() {
        Ok(ip) => SocketAddr::new(ip, port).to_string(),
        Err(_) => format!("{host}:{port}"),
    }
}
