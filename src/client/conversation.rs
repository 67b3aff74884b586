//! The conversation client: framed or line messages, in lock-step with the server.
//!
//! Invariant: every server message is shown, in order, as soon as it arrives, and the
//! client asks for the next line of input only when every message it sent has been
//! answered. That lock-step is what lets it hide the answer to a password question, and
//! it is never slower than the user: the server answers each message at once.
//!
//! And it never waits for ever: the greeting must come within the greeting timeout, each
//! answer within the reply timeout. It ends well (`Ok`) only when the user ended it: end
//! of input or `/quit` half-close the connection and the server closes after answering,
//! or the user sent `/logout` and the server closed after its goodbye. Any other end is
//! an error naming what happened, and, when input was piped, how many lines were not
//! sent.
//!
//! With a server that offers session tokens (see docs/PROTOCOL.md), the client presents
//! its token for that server, keeps the new one a password login brings, and never shows
//! either.
//!
//! Two plain threads feed one channel: one reads server messages, the other reads stdin
//! when asked. The main thread owns the socket's writing half.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use zeroize::Zeroizing;

use super::link::Link;
use super::token_file::TokenFile;
use super::{ClientConfig, QUIT};
use crate::handler::auth::{ASK_USERNAME, TOKEN_CAPABILITY, TOKEN_LINE};
use crate::wire::CodecKind;
use crate::wire::frame::{FrameError, RecvMsg, SendMsg};
use crate::wire::lines::{self, LineError};

/// A command that asks the server to end the conversation.
const LOGOUT: &str = "/logout";
/// How long to wait for the count of lines left on a pipe that was not read to its end.
const COUNT_WAIT: Duration = Duration::from_secs(1);

enum Event {
    Message(String),
    ServerClosed,
    ServerFailed(anyhow::Error),
    Line(Zeroizing<String>),
    InputEnded,
    InputFailed(io::Error),
    /// Lines left on stdin when the conversation ended early.
    Left(usize),
}

/// What the stdin thread is asked to do next.
enum Ask {
    Line,
    /// A line the terminal must not echo.
    Secret,
    /// Read the rest of the input, counting its lines.
    Count,
}

/// Why a message was not sent.
enum Unsent {
    /// This message cannot be sent (too large); the conversation goes on.
    Refused(String),
    /// The connection is broken.
    Gone,
}

/// Talks to the server on `stream` until the conversation ends; see the module doc.
pub fn run(
    stream: Link,
    server: SocketAddr,
    config: &ClientConfig,
    interactive: bool,
) -> anyhow::Result<()> {
    // A token won over TLS is kept apart, so that it is never offered over plain TCP.
    let token_key = if stream.is_tls() {
        format!("tls://{server}")
    } else {
        server.to_string()
    };
    let (events, inbox) = mpsc::channel();
    spawn_receiver(
        stream.try_clone()?,
        config.codec,
        config.max_frame,
        events.clone(),
    );
    let input = spawn_stdin_reader(events, interactive);
    let mut talk = Conversation {
        stream,
        codec: config.codec,
        max_frame: config.max_frame,
        server,
        token_key,
        out: io::stdout().lock(),
        tokens: None,
        token_file: config.token_file.clone(),
        awaiting: 1, // the greeting
        asking: false,
        sending: true,
        greeted: false,
        token_sent: false,
        logging_out: false,
        user_ended: false,
        last_shown: None,
    };
    let connected = Instant::now();
    let mut waiting_since = connected;
    loop {
        let (limit, since) = if talk.greeted {
            (config.reply_timeout, waiting_since)
        } else {
            (config.greeting_timeout, connected)
        };
        // Waiting on the server (an answer, or its close after ours); not on the user.
        let waiting_on_server = talk.awaiting > 0 || !talk.sending;
        let event = if waiting_on_server {
            let left = limit.saturating_sub(since.elapsed());
            match inbox.recv_timeout(left) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => {
                    let why = talk.timed_out(config, limit);
                    return Err(talk.ended_early(why, &input, &inbox, interactive));
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        } else {
            match inbox.recv() {
                Ok(event) => event,
                Err(_) => return Ok(()),
            }
        };
        match event {
            Event::Message(text) => {
                talk.on_message(text)?;
                if talk.ready_for_input() {
                    let ask = if talk.last_shown.as_deref().is_some_and(asks_for_secret) {
                        Ask::Secret
                    } else {
                        Ask::Line
                    };
                    talk.asking = input.send(ask).is_ok();
                }
            }
            Event::ServerClosed => {
                log::debug!("{server} closed the connection");
                // A close is the end the user asked for (end of input, /quit), unless
                // the server's last word was an error notice: then it ended the
                // conversation, whichever came first.
                if (!talk.sending || talk.user_ended) && !talk.closed_with_error() {
                    return Ok(());
                }
                let why = talk.closed_by_server();
                return Err(talk.ended_early(why, &input, &inbox, interactive));
            }
            Event::ServerFailed(e) => {
                let hint = talk.hint_for(&e);
                return Err(e.context(format!("connection to {server} failed{hint}")));
            }
            Event::Line(line) => {
                talk.asking = false;
                talk.on_line(line);
                waiting_since = Instant::now();
                if talk.ready_for_input() {
                    talk.asking = input.send(Ask::Line).is_ok();
                }
            }
            Event::InputEnded => {
                talk.asking = false;
                talk.stop_sending();
                waiting_since = Instant::now();
            }
            Event::InputFailed(e) => return Err(e).context("could not read standard input"),
            Event::Left(_) => {}
        }
    }
}

struct Conversation<'a> {
    stream: Link,
    codec: CodecKind,
    max_frame: usize,
    server: SocketAddr,
    /// What the session token is kept under: the address, `tls://` first over TLS.
    token_key: String,
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
    /// The user sent a command that ends the conversation: the server's close is normal.
    user_ended: bool,
    /// The message on screen, to know whether it asks for a password.
    last_shown: Option<String>,
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
                self.logging_out = line.trim() == LOGOUT;
                self.user_ended |= self.logging_out;
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
        self.last_shown = Some(text.to_owned());
        writeln!(self.out, "{text}")?;
        self.out.flush()
    }

    /// Why the wait that just ran out was too long.
    fn timed_out(&self, config: &ClientConfig, limit: Duration) -> String {
        let server = self.server;
        let limit = humantime::format_duration(limit);
        if !self.greeted {
            let hint = match (config.codec, config.tls.is_some()) {
                (CodecKind::Lines, true) => "a raw echo server? try --codec raw",
                (CodecKind::Lines, false) => "a raw echo or TLS server? try --codec raw or --tls",
                (_, true) => "a line or raw server? try --codec lines or --codec raw",
                (_, false) => "a line, raw or TLS server? try --codec lines, --codec raw or --tls",
            };
            format!("no greeting from {server} within {limit}; {hint}")
        } else if self.sending {
            format!("no reply from {server} within {limit}")
        } else {
            format!("{server} did not close the connection within {limit} after the end of input")
        }
    }

    /// Why the server's close, before the user ended the conversation, is an error.
    /// Whether the server's last message was one of its error notices ("error: ...;
    /// closing the connection", docs/PROTOCOL.md).
    fn closed_with_error(&self) -> bool {
        self.last_shown
            .as_deref()
            .and_then(|m| m.lines().last())
            .is_some_and(|last| {
                last.starts_with("error: ") && last.ends_with("closing the connection")
            })
    }

    fn closed_by_server(&self) -> String {
        match &self.last_shown {
            _ if self.awaiting > 0 && self.greeted => {
                format!("{} closed the connection without answering", self.server)
            }
            Some(last) => format!(
                "{} ended the conversation (its last message: {:?})",
                self.server,
                last.lines().last().unwrap_or_default()
            ),
            None => format!("{} closed the connection without a word", self.server),
        }
    }

    /// The error for a conversation that ended before the user ended it: `why`, and, if
    /// the input is a pipe, how many of its lines were never sent.
    fn ended_early(
        &mut self,
        why: String,
        input: &mpsc::Sender<Ask>,
        inbox: &mpsc::Receiver<Event>,
        interactive: bool,
    ) -> anyhow::Error {
        let _ = self.stream.shutdown(Shutdown::Both);
        if interactive || !self.sending {
            return anyhow::anyhow!(why);
        }
        // Lines read and not sent (one may be on its way from the stdin thread), then
        // the rest of the input, counted by that thread if it finishes in time.
        let mut unsent = 0;
        if input.send(Ask::Count).is_ok() {
            let deadline = Instant::now() + COUNT_WAIT;
            loop {
                match inbox.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(Event::Line(_)) => unsent += 1,
                    Ok(Event::Left(n)) => {
                        unsent += n;
                        return anyhow::anyhow!("{why}; {unsent} line(s) of input not sent");
                    }
                    Ok(Event::InputEnded) => {
                        return anyhow::anyhow!("{why}; {unsent} line(s) of input not sent");
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        // The input has not ended (a program still writing to the pipe, say).
        match unsent {
            0 => anyhow::anyhow!("{why}; the rest of the input was not sent"),
            n => anyhow::anyhow!("{why}; {n} line(s) of input, and the rest, not sent"),
        }
    }

    /// A hint for a failure that suggests the server speaks another codec.
    fn hint_for(&self, e: &anyhow::Error) -> &'static str {
        let misread = e.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<FrameError>(),
                Some(FrameError::TooLarge { .. } | FrameError::InvalidUtf8 { .. })
            ) || matches!(
                cause.downcast_ref::<LineError>(),
                Some(LineError::TooLong { .. } | LineError::InvalidUtf8 { .. })
            )
        });
        match (misread && !self.greeted, self.codec) {
            (true, CodecKind::Lines) => " (not a line server? try --codec framed or raw)",
            (true, _) => " (not a framed server? try --codec lines or raw)",
            (false, _) => "",
        }
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
        let offer = match file.get(&self.token_key) {
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
        if let Err(e) = tokens.set(&self.token_key, token.trim()) {
            eprintln!("netlab: could not keep the session token: {e:#}");
        }
        let shown = shown.to_owned();
        drop(Zeroizing::new(text));
        shown
    }

    fn forget_token(&mut self) {
        if let Some(tokens) = &self.tokens
            && let Err(e) = tokens.remove(&self.token_key)
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

fn spawn_receiver(stream: Link, codec: CodecKind, max_frame: usize, events: mpsc::Sender<Event>) {
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

/// Reads stdin as it is asked: a line, a secret without echo on a terminal, or the count
/// of the lines left.
fn spawn_stdin_reader(events: mpsc::Sender<Event>, interactive: bool) -> mpsc::Sender<Ask> {
    let (asks, requests) = mpsc::channel();
    thread::spawn(move || {
        for ask in requests {
            let read = match ask {
                Ask::Count => {
                    let _ = events.send(Event::Left(io::stdin().lock().lines().count()));
                    return;
                }
                Ask::Secret if interactive => crate::terminal::read_hidden(),
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
