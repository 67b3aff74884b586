//! `netlab connect`: the conversation client (lab task 10).
//!
//! Invariant: every server message is shown, in order, as soon as it arrives, and the
//! client asks for the next line of input only when every message it sent has been
//! answered. That lock-step is what lets it hide the answer to a password question, and
//! it is never slower than the user: the server answers each message at once.
//!
//! End of input and `/quit` half-close the connection: the server answers what it has,
//! then closes, and the client shows those answers before it exits.
//!
//! With a server that offers session tokens (see docs/PROTOCOL.md), the client presents
//! its token for that server, keeps the new one a password login brings, and never shows
//! either.
//!
//! Two plain threads feed one channel: one reads server messages, the other reads
//! stdin when asked. The main thread owns the socket's writing half.

pub mod token_file;

use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use socket2::{Domain, Socket, Type};
use zeroize::Zeroizing;

use crate::handler::auth::{ASK_USERNAME, TOKEN_CAPABILITY, TOKEN_LINE};
use crate::wire::CodecKind;
use crate::wire::frame::{FrameError, RecvMsg, SendMsg};
use crate::wire::lines::{self, LineError};
use token_file::TokenFile;

/// Typed on a line of its own, ends the conversation.
pub const QUIT: &str = "/quit";

/// How long to wait for a server to answer the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ClientConfig {
    pub host: String,
    pub port: u16,
    /// Framed or lines: how messages travel.
    pub codec: CodecKind,
    pub max_frame: usize,
    /// Source address to connect from.
    pub bind: Option<IpAddr>,
    /// Where session tokens are kept; `None`: the default place.
    pub token_file: Option<PathBuf>,
}

enum Event {
    Message(String),
    ServerClosed,
    ServerFailed(anyhow::Error),
    Line(Zeroizing<String>),
    InputEnded,
    InputFailed(io::Error),
}

/// Why a message was not sent.
enum Unsent {
    /// This message cannot be sent (too large); the conversation goes on.
    Refused(String),
    /// The connection is broken.
    Gone,
}

/// What the stdin thread is asked to read next.
enum Ask {
    Line,
    /// A line the terminal must not echo.
    Secret,
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
    spawn_receiver(
        stream.try_clone()?,
        config.codec,
        config.max_frame,
        events.clone(),
    );
    let input = spawn_stdin_reader(events, interactive);

    let mut session = Conversation {
        stream,
        codec: config.codec,
        max_frame: config.max_frame,
        server,
        out: io::stdout().lock(),
        tokens: None,
        token_file: config.token_file.clone(),
        awaiting: 1, // the greeting
        asking: false,
        sending: true,
        greeted: false,
        token_sent: false,
        logging_out: false,
        last_shown: String::new(),
    };
    for event in inbox {
        match event {
            Event::Message(text) => {
                session.on_message(text)?;
                if session.ready_for_input() {
                    let ask = if asks_for_secret(&session.last_shown) {
                        Ask::Secret
                    } else {
                        Ask::Line
                    };
                    session.asking = input.send(ask).is_ok();
                }
            }
            Event::ServerClosed => {
                log::debug!("{server} closed the connection");
                return Ok(());
            }
            Event::ServerFailed(e) => {
                return Err(e.context(format!("connection to {server} failed")));
            }
            Event::Line(line) => {
                session.asking = false;
                session.on_line(line);
                if session.ready_for_input() {
                    session.asking = input.send(Ask::Line).is_ok();
                }
            }
            Event::InputEnded => {
                session.asking = false;
                session.stop_sending();
            }
            Event::InputFailed(e) => return Err(e).context("could not read standard input"),
        }
    }
    Ok(())
}

struct Conversation<'a> {
    stream: TcpStream,
    codec: CodecKind,
    max_frame: usize,
    server: SocketAddr,
    out: io::StdoutLock<'a>,
    /// The token file, once the server has said it takes tokens.
    tokens: Option<TokenFile>,
    token_file: Option<PathBuf>,
    /// Messages sent and not yet answered.
    awaiting: usize,
    /// A line of input has been asked for.
    asking: bool,
    sending: bool,
    greeted: bool,
    /// The last message sent was `/token ...`, sent on the user's behalf.
    token_sent: bool,
    logging_out: bool,
    /// The message on screen, to know whether it asks for a password.
    last_shown: String,
}

impl Conversation<'_> {
    fn on_message(&mut self, text: String) -> anyhow::Result<()> {
        self.awaiting = self.awaiting.saturating_sub(1);
        let text = self.take_token(text);
        let first = !self.greeted;
        self.greeted = true;
        let quiet = std::mem::take(&mut self.token_sent) && text == ASK_USERNAME;
        if quiet {
            // The token was refused (expired, revoked) and the server asks the question
            // the greeting already shows: fall back to the password without a word.
            self.forget_token();
        } else {
            self.show(&text)?;
        }
        if std::mem::take(&mut self.logging_out) {
            self.forget_token();
        }
        if first && text.lines().any(|l| l == TOKEN_CAPABILITY) {
            self.offer_token();
        }
        Ok(())
    }

    fn on_line(&mut self, line: Zeroizing<String>) {
        if !self.sending {
            return;
        }
        if line.trim() == QUIT {
            self.stop_sending();
            return;
        }
        match self.send(&line) {
            Ok(()) => {
                self.awaiting += 1;
                self.logging_out = line.trim() == "/logout";
            }
            Err(Unsent::Refused(reason)) => eprintln!("not sent: {reason}"),
            // The server has gone; the receiver will say how, so wait for its event.
            Err(Unsent::Gone) => self.sending = false,
        }
    }

    /// Sends one message in the connection's codec.
    fn send(&mut self, text: &str) -> Result<(), Unsent> {
        match self.codec {
            CodecKind::Lines => match lines::write_line(&mut self.stream, text, self.max_frame) {
                Ok(()) => Ok(()),
                Err(e @ (LineError::TooLarge { .. } | LineError::Newline)) => {
                    Err(Unsent::Refused(e.to_string()))
                }
                Err(_) => Err(Unsent::Gone),
            },
            _ => match self.stream.send_msg_max(text, self.max_frame) {
                Ok(()) => Ok(()),
                Err(e @ FrameError::TooLarge { .. }) => Err(Unsent::Refused(e.to_string())),
                Err(_) => Err(Unsent::Gone),
            },
        }
    }

    fn ready_for_input(&self) -> bool {
        self.sending && self.awaiting == 0 && !self.asking
    }

    /// Half-closes the connection: the server sees the end of the conversation after the
    /// last line sent, answers what it has, and closes its side, which ends the client.
    fn stop_sending(&mut self) {
        self.sending = false;
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    fn show(&mut self, text: &str) -> io::Result<()> {
        text.clone_into(&mut self.last_shown);
        writeln!(self.out, "{text}")
    }

    /// Sends the stored token for this server, or asks for one to be issued at the next
    /// password login.
    fn offer_token(&mut self) {
        let file = match &self.token_file {
            Some(path) => TokenFile::at(path.clone()),
            None => match TokenFile::default_path() {
                Ok(path) => TokenFile::at(path),
                Err(e) => return eprintln!("netlab: session tokens are off: {e:#}"),
            },
        };
        let offer = match file.get(&self.server.to_string()) {
            Ok(Some(token)) => Zeroizing::new(format!("/token {}", token.as_str())),
            Ok(None) => Zeroizing::new("/token".to_owned()),
            Err(e) => return eprintln!("netlab: session tokens are off: {e:#}"),
        };
        if self.send(&offer).is_ok() {
            self.awaiting += 1;
            self.token_sent = true;
            self.tokens = Some(file);
        }
    }

    /// Removes a new session token from a welcome and stores it.
    fn take_token(&mut self, text: String) -> String {
        let Some(tokens) = &self.tokens else {
            return text;
        };
        let Some((shown, token)) = text.rsplit_once(&format!("\n{TOKEN_LINE}")) else {
            return text;
        };
        if let Err(e) = tokens.set(&self.server.to_string(), token.trim()) {
            eprintln!("netlab: could not keep the session token: {e:#}");
        }
        let shown = shown.to_owned();
        drop(Zeroizing::new(text));
        shown
    }

    fn forget_token(&mut self) {
        if let Some(tokens) = &self.tokens
            && let Err(e) = tokens.remove(&self.server.to_string())
        {
            eprintln!("netlab: could not remove the session token: {e:#}");
        }
    }
}

/// A question whose answer must not be echoed: its last line ends with "password:".
pub fn asks_for_secret(message: &str) -> bool {
    message
        .lines()
        .last()
        .is_some_and(|line| line.trim_end().to_lowercase().ends_with("password:"))
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

fn spawn_receiver(
    stream: TcpStream,
    codec: CodecKind,
    max_frame: usize,
    events: mpsc::Sender<Event>,
) {
    thread::spawn(move || {
        let mut stream = BufReader::new(stream);
        loop {
            let received = match codec {
                CodecKind::Lines => lines::read_message(&mut stream, max_frame).map_err(Into::into),
                _ => stream.recv_msg_max(max_frame).map_err(Into::into),
            };
            let event = match received {
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

/// Reads one line of stdin each time it is asked; a secret without echo on a terminal.
fn spawn_stdin_reader(events: mpsc::Sender<Event>, interactive: bool) -> mpsc::Sender<Ask> {
    let (asks, requests) = mpsc::channel();
    thread::spawn(move || {
        for ask in requests {
            let read = match ask {
                Ask::Secret if interactive => console::Term::stderr()
                    .read_secure_line()
                    .map(|line| Some(Zeroizing::new(line))),
                _ => read_line(),
            };
            let event = match read {
                Ok(Some(line)) => Event::Line(line),
                Ok(None) => Event::InputEnded,
                Err(e) => Event::InputFailed(e),
            };
            let done = !matches!(event, Event::Line(_));
            if events.send(event).is_err() || done {
                return;
            }
        }
    });
    asks
}

/// One line of stdin without its line ending; `None` at the end of input.
fn read_line() -> io::Result<Option<Zeroizing<String>>> {
    let mut line = Zeroizing::new(String::new());
    if io::stdin().lock().read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let trimmed = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(trimmed);
    Ok(Some(line))
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
    fn password_questions_are_recognised_by_their_last_line() {
        assert!(asks_for_secret("Password:"));
        assert!(asks_for_secret("Wrong password. Password:"));
        assert!(asks_for_secret(
            "New user bob. Choose a password (8 to 1024 bytes). Password:"
        ));
        assert!(asks_for_secret("Repeat the password:"));
        assert!(!asks_for_secret("Username:"));
        assert!(!asks_for_secret("my password: is this echoed?\nno"));
    }
}
