//! One connection of the checker to the server under test, speaking the server's codec.
//!
//! Invariant: no call waits past the deadline it is given, and nothing the server sends
//! can make the checker hold more than [`Probe::max`] bytes for one message: a server that
//! goes silent or sends garbage costs one case its timeout, never the run or the memory.
//!
//! Lines are read one at a time, not as netlab's multi-line messages: a foreign line
//! server may end every line in `\r\n`, which netlab's rule would read as "more follows".

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use memchr::memchr;
use socket2::{Domain, Protocol, Socket, Type};

use crate::wire::CodecKind;
use crate::wire::frame::HEADER_LEN;

/// How a read ended without the bytes it waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The server closed the connection, after `partial` bytes of an unfinished message.
    Closed { partial: usize },
    /// Nothing (more) arrived before the deadline.
    Silent { partial: usize },
    /// The connection broke: reset by the server, or another error.
    Broken(String),
    /// The server sent something that cannot be a message (a header over the maximum).
    Garbled(String),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Closed { partial: 0 } => write!(f, "the server closed the connection"),
            Ended::Closed { partial } => write!(
                f,
                "the server closed the connection after {partial} bytes of a message"
            ),
            Ended::Silent { partial: 0 } => write!(f, "no answer within the timeout"),
            Ended::Silent { partial } => write!(
                f,
                "{partial} bytes of an answer, then nothing more within the timeout"
            ),
            Ended::Broken(why) => write!(f, "the connection broke: {why}"),
            Ended::Garbled(why) => f.write_str(why),
        }
    }
}

pub struct Probe {
    stream: TcpStream,
    codec: CodecKind,
    /// Bytes received and not yet taken as a message.
    pending: Vec<u8>,
    /// Largest message accepted from the server.
    pub max: usize,
}

impl Probe {
    /// Connects to `server`, from the address `from` when given (several clients on one
    /// machine: 127.0.0.2, 127.0.0.3), within `timeout`.
    pub fn connect(
        server: SocketAddr,
        from: Option<IpAddr>,
        codec: CodecKind,
        max: usize,
        timeout: Duration,
    ) -> io::Result<Probe> {
        let socket = Socket::new(
            Domain::for_address(server),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        if let Some(ip) = from {
            socket.bind(&SocketAddr::new(ip, 0).into())?;
        }
        socket.connect_timeout(&server.into(), timeout)?;
        // Each small write its own segment, so that "one byte at a time" is what the
        // server's recv() sees, as it would on a real network.
        socket.set_tcp_nodelay(true)?;
        let stream: TcpStream = socket.into();
        stream.set_write_timeout(Some(timeout))?;
        Ok(Probe {
            stream,
            codec,
            pending: Vec::new(),
            max,
        })
    }

    /// `payload` as this codec puts it on the wire.
    pub fn encode(codec: CodecKind, payload: &[u8]) -> Vec<u8> {
        let mut wire = Vec::with_capacity(payload.len() + HEADER_LEN);
        match codec {
            CodecKind::Framed => {
                // The checker may declare any length (case 9.7): no maximum here.
                wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                wire.extend_from_slice(payload);
            }
            CodecKind::Lines => {
                wire.extend_from_slice(payload);
                wire.push(b'\n');
            }
            CodecKind::Raw => wire.extend_from_slice(payload),
        }
        wire
    }

    /// Sends one message (raw: the bytes as they are).
    pub fn send(&mut self, payload: &[u8]) -> Result<(), Ended> {
        self.send_wire(&Self::encode(self.codec, payload))
    }

    /// Sends bytes exactly as given.
    pub fn send_wire(&mut self, bytes: &[u8]) -> Result<(), Ended> {
        self.stream.write_all(bytes).map_err(broken)
    }

    /// Writes `bytes` from another thread in pieces with pauses while `read` runs here, so
    /// that a server that answers as it reads never blocks on a checker that is not
    /// reading. Returns what `read` returned: a write that failed (the server stopped
    /// reading) shows there as a missing or wrong answer, which says more. If the writer
    /// could not finish, the connection is shut down.
    pub fn exchange<T>(
        &mut self,
        bytes: Vec<u8>,
        piece: usize,
        pause: Duration,
        read: impl FnOnce(&mut Probe) -> Result<T, Ended>,
    ) -> Result<T, Ended> {
        let mut writer = self.stream.try_clone().map_err(broken)?;
        let sending = thread::spawn(move || -> io::Result<()> {
            for (i, chunk) in bytes.chunks(piece.max(1)).enumerate() {
                if i > 0 && !pause.is_zero() {
                    thread::sleep(pause);
                }
                writer.write_all(chunk)?;
            }
            Ok(())
        });
        let got = read(self);
        // A writer that has sent everything ends at once. One still at work after that
        // is stuck on a server that no longer reads (the case is decided, and the
        // connection is shut to free it), or is feeding a server that answered early.
        let until = Instant::now() + Duration::from_millis(100);
        while got.is_ok() && !sending.is_finished() && Instant::now() < until {
            thread::sleep(Duration::from_millis(1));
        }
        if !sending.is_finished() {
            let _ = self.stream.shutdown(Shutdown::Both);
        }
        let _ = sending.join();
        got
    }

    /// Ends this side of the conversation (a half-close): the server reads EOF.
    pub fn half_close(&mut self) -> Result<(), Ended> {
        self.stream.shutdown(Shutdown::Write).map_err(broken)
    }

    /// Closes with a reset (RST) instead of a goodbye (FIN), as a killed client or a
    /// broken network does.
    pub fn reset(self) {
        let socket = Socket::from(self.stream);
        let _ = socket.set_linger(Some(Duration::ZERO));
        drop(socket);
    }

    /// Receives one message before `deadline`; raw: whatever bytes come next.
    pub fn recv(&mut self, deadline: Instant) -> Result<Vec<u8>, Ended> {
        match self.codec {
            CodecKind::Framed => self.recv_frame(deadline),
            CodecKind::Lines => self.recv_line(deadline),
            CodecKind::Raw => {
                if self.pending.is_empty() {
                    self.fill(deadline)?;
                }
                Ok(std::mem::take(&mut self.pending))
            }
        }
    }

    /// Receives exactly `n` bytes (raw), or says how many came.
    pub fn recv_exact(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>, Ended> {
        while self.pending.len() < n {
            self.fill(deadline)?;
        }
        Ok(self.pending.drain(..n).collect())
    }

    /// Receives the greeting: a frame; or lines up to one ending in a bare `\n` (netlab's
    /// rule), or else, for a server that ends every line in `\r\n`, `known_lines` of
    /// them when that number is known, or those that come before a pause of `quiet`.
    /// Returns the greeting, and for such a server how many lines it had.
    pub fn recv_greeting(
        &mut self,
        deadline: Instant,
        quiet: Duration,
        known_lines: Option<usize>,
    ) -> Result<(String, Option<usize>), Ended> {
        if self.codec != CodecKind::Lines {
            let frame = self.recv(deadline)?;
            return Ok((String::from_utf8_lossy(&frame).into_owned(), None));
        }
        let mut lines = Vec::new();
        loop {
            if known_lines == Some(lines.len()) {
                break;
            }
            let wait = if lines.is_empty() {
                deadline
            } else {
                deadline.min(Instant::now() + quiet)
            };
            match self.take_line(wait) {
                Ok((line, more)) => {
                    lines.push(String::from_utf8_lossy(&line).into_owned());
                    if !more {
                        return Ok((lines.join("\n"), None));
                    }
                }
                Err(Ended::Silent { partial: 0 }) if !lines.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        let count = lines.len();
        Ok((lines.join("\n"), Some(count)))
    }

    /// Waits until `deadline` for the server to close; `Ok(bytes)` is whatever came
    /// before the close.
    pub fn recv_close(&mut self, deadline: Instant) -> Result<Vec<u8>, Ended> {
        loop {
            match self.fill(deadline) {
                Ok(_) if self.pending.len() > self.max => {
                    return Err(Ended::Garbled(format!(
                        "more than {} bytes and no close",
                        self.max
                    )));
                }
                Ok(_) => {}
                Err(Ended::Closed { .. }) => return Ok(std::mem::take(&mut self.pending)),
                Err(e) => return Err(e),
            }
        }
    }

    fn recv_frame(&mut self, deadline: Instant) -> Result<Vec<u8>, Ended> {
        while self.pending.len() < HEADER_LEN {
            self.fill(deadline)?;
        }
        let header: [u8; HEADER_LEN] = self.pending[..HEADER_LEN].try_into().expect("4 bytes");
        let len = u32::from_be_bytes(header) as usize;
        if len > self.max {
            return Err(Ended::Garbled(format!(
                "a header declaring {len} bytes, over the checker's maximum of {}",
                self.max
            )));
        }
        while self.pending.len() < HEADER_LEN + len {
            self.fill(deadline)?;
        }
        let payload = self.pending[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.pending.drain(..HEADER_LEN + len);
        Ok(payload)
    }

    fn recv_line(&mut self, deadline: Instant) -> Result<Vec<u8>, Ended> {
        self.take_line(deadline).map(|(line, _)| line)
    }

    /// One line without its ending, and whether it ended in `\r\n`.
    fn take_line(&mut self, deadline: Instant) -> Result<(Vec<u8>, bool), Ended> {
        let mut scanned = 0;
        loop {
            if let Some(i) = memchr(b'\n', &self.pending[scanned..]) {
                let end = scanned + i;
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                let crlf = line.last() == Some(&b'\r');
                while line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok((line, crlf));
            }
            scanned = self.pending.len();
            if scanned > self.max {
                return Err(Ended::Garbled(format!(
                    "a line of more than {} bytes without an end",
                    self.max
                )));
            }
            self.fill(deadline)?;
        }
    }

    /// Reads what is there, waiting until `deadline` for at least one byte.
    fn fill(&mut self, deadline: Instant) -> Result<usize, Ended> {
        let partial = self.pending.len();
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Ended::Silent { partial });
        }
        self.stream.set_read_timeout(Some(left)).map_err(broken)?;
        let mut buf = [0u8; 64 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => Err(Ended::Closed { partial }),
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(Ended::Silent { partial })
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(broken(e)),
        }
    }

    /// Bytes received and not taken as a message.
    pub fn leftover(&self) -> &[u8] {
        &self.pending
    }
}

fn broken(e: io::Error) -> Ended {
    let why = match e.kind() {
        io::ErrorKind::ConnectionReset => "reset by the server".to_owned(),
        io::ErrorKind::BrokenPipe => "the server is no longer reading (broken pipe)".to_owned(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            "the server stopped reading: a write timed out".to_owned()
        }
        _ => e.to_string(),
    };
    Ended::Broken(why)
}

/// Bytes as a report shows them: quoted text, cut at 60 characters, with the length;
/// or the first bytes in hex when they are not UTF-8.
pub fn describe(bytes: &[u8]) -> String {
    const SHOWN: usize = 60;
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let chars = text.chars().count();
            let shown: String = text.chars().take(SHOWN).collect();
            let shown = crate::text::escape_unsafe(&shown).replace('"', "\\\"");
            if chars > SHOWN {
                format!("\"{shown}...\" ({} bytes)", bytes.len())
            } else {
                format!("\"{shown}\"")
            }
        }
        Err(_) => {
            let head: Vec<String> = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
            let more = if bytes.len() > 16 { " ..." } else { "" };
            format!("{} bytes, not UTF-8: {}{more}", bytes.len(), head.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_cuts_long_text_and_shows_binary_as_hex() {
        assert_eq!(describe(b"hi"), "\"hi\"");
        let long = "я".repeat(100);
        assert_eq!(
            describe(long.as_bytes()),
            format!("\"{}...\" (200 bytes)", "я".repeat(60))
        );
        assert_eq!(describe(&[0xff, 0x00]), "2 bytes, not UTF-8: ff 00");
        assert_eq!(describe("a\u{1b}".as_bytes()), "\"a\\u{1b}\"");
    }

    #[test]
    fn each_codec_puts_a_message_on_the_wire_its_own_way() {
        assert_eq!(
            Probe::encode(CodecKind::Framed, "я".as_bytes()),
            [0, 0, 0, 2, 0xd1, 0x8f]
        );
        assert_eq!(Probe::encode(CodecKind::Lines, b"a"), b"a\n");
        assert_eq!(Probe::encode(CodecKind::Raw, b"a"), b"a");
    }
}
