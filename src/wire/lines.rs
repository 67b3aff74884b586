//! The line codec: one message per line of UTF-8 text, for nc, telnet, socat and the
//! ten-line readline client.
//!
//! **Client to server**, a message is one line: its text, then `\n`. Carriage returns
//! just before the `\n` are part of the line ending, not of the text (telnet and Windows
//! send `\r\n`), and are dropped. A message therefore cannot hold a newline.
//!
//! **Server to client**, a message is sent as its lines. Every line but the last ends in
//! `\r\n`; the last ends in a bare `\n`. A client reads lines until one ends without `\r`,
//! and those lines, joined with `\n`, are one message. A person at nc or telnet just sees
//! lines.
//!
//! ```text
//! "hello"                  68 65 6c 6c 6f 0a                     one line
//! "Welcome.\nUsername:"    57 65 .. 2e 0d 0a  55 73 .. 3a 0a      two lines, one message
//!                                      └ \r\n: more follows └ \n: the end
//! ```
//!
//! The rule cannot be fooled by a message's text: no line of a message ever ends in
//! `\r`, since the server drops trailing carriage returns from each line it receives and
//! from each line it sends. An echoed line comes back exactly as sent, and always ends
//! its message.
//!
//! ```
//! use netlab::wire::lines::{read_message, write_line};
//!
//! let mut wire = Vec::new();
//! write_line(&mut wire, "привет", 64)?;
//! assert_eq!(wire, "привет\n".as_bytes());
//!
//! // What a server sends for a message of two lines, and how a client reads it.
//! let mut from_server = &b"Welcome.\r\nUsername:\nhi\n"[..];
//! assert_eq!(read_message(&mut from_server, 64)?.as_deref(), Some("Welcome.\nUsername:"));
//! assert_eq!(read_message(&mut from_server, 64)?.as_deref(), Some("hi"));
//! // The server closed between messages: the conversation is over, not broken.
//! assert_eq!(read_message(&mut from_server, 64)?, None);
//! # Ok::<(), netlab::wire::lines::LineError>(())
//! ```
//!
//! Invariant: a line's text is at most the maximum (`--max-frame`, default 64 KiB)
//! bytes, and the bytes of an unfinished line are refused as soon as they pass it, so a
//! peer that never sends `\n` costs at most that much memory. A line that is not UTF-8,
//! or holds the telnet command byte 0xFF (never part of UTF-8 text), is refused as soon
//! as it is seen. A close in the middle of a line is an error, not a message.

use std::io::{self, BufRead, Write};

use bytes::{Buf, Bytes, BytesMut};
use memchr::{memchr, memchr2};

use super::codec::{Codec, PeerError};
use super::outbox::Outbox;

/// Telnet's "interpret as command" byte, which starts every telnet negotiation.
const IAC: u8 = 0xFF;

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("line longer than the maximum of {max} bytes")]
    TooLong { max: usize },
    #[error("message of {len} bytes is over the maximum of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("connection closed in the middle of a line ({got} bytes and no newline)")]
    Unfinished { got: usize },
    #[error("line is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 { offset: usize },
    #[error(
        "telnet negotiation (byte 0xFF) is not text; this server speaks plain lines \
         (with telnet, do not use its command mode)"
    )]
    Telnet,
    #[error("a message holding a newline cannot be sent as one line")]
    Newline,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl PeerError for LineError {
    fn can_tell_peer(&self) -> bool {
        match self {
            LineError::TooLong { .. }
            | LineError::TooLarge { .. }
            | LineError::InvalidUtf8 { .. }
            | LineError::Telnet => true,
            LineError::Unfinished { .. } | LineError::Newline | LineError::Io(_) => false,
        }
    }
}

/// The server's side of the line codec.
#[derive(Debug)]
pub struct Lines {
    max: usize,
    /// Bytes at the front of the read buffer already searched for a newline: a long
    /// line arriving in many reads is scanned once, not once per read.
    scanned: usize,
}

impl Codec for Lines {
    type Error = LineError;
    const PLAIN_TEXT: bool = true;

    fn with_max(max: usize) -> Self {
        Lines { max, scanned: 0 }
    }

    // Called once per message, from the connection's hot loop: inlined there, like
    // encode, rather than a call per message.
    #[inline]
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, LineError> {
        let Some(found) = memchr2(b'\n', IAC, &buf[self.scanned..]) else {
            // The text of a line, and one `\r` of its ending, may be in before the `\n`.
            if buf.len() > self.max + 1 {
                return Err(LineError::TooLong { max: self.max });
            }
            self.scanned = buf.len();
            return Ok(None);
        };
        let newline = self.scanned + found;
        if buf[newline] == IAC {
            return Err(LineError::Telnet);
        }
        let text_len = trim_cr(&buf[..newline]).len();
        if newline > self.max + 1 || text_len > self.max {
            return Err(LineError::TooLong { max: self.max });
        }
        let text = buf[..text_len].to_vec();
        buf.advance(newline + 1);
        self.scanned = 0;
        String::from_utf8(text)
            .map(Some)
            .map_err(|e| LineError::InvalidUtf8 {
                offset: e.utf8_error().valid_up_to(),
            })
    }

    fn truncated(&self, unfinished: &BytesMut) -> LineError {
        LineError::Unfinished {
            got: unfinished.len(),
        }
    }

    #[inline]
    fn encode(&mut self, msg: Bytes, out: &mut Outbox) -> Result<(), LineError> {
        if msg.len() > self.max {
            return Err(LineError::TooLarge {
                len: msg.len(),
                max: self.max,
            });
        }
        // Nearly every message is one line: sent as it is, then its ending.
        let Some(mut newline) = memchr(b'\n', &msg) else {
            let len = trim_cr(&msg).len();
            if len == msg.len() {
                out.put(msg);
            } else {
                out.put_part(&msg, 0..len);
            }
            out.put_slice(b"\n");
            return Ok(());
        };
        let mut start = 0;
        loop {
            let line = &msg[start..newline];
            out.put_part(&msg, start..start + trim_cr(line).len());
            if newline == msg.len() {
                out.put_slice(b"\n");
                return Ok(());
            }
            out.put_slice(b"\r\n");
            start = newline + 1;
            newline = memchr(b'\n', &msg[start..]).map_or(msg.len(), |i| start + i);
        }
    }
}

/// Whether `received`, bytes from a server, ends at the end of a message: a line ending
/// that is not `\r\n`.
pub fn ends_message(received: &[u8]) -> bool {
    received.ends_with(b"\n") && !received.ends_with(b"\r\n")
}

/// `line` without the carriage returns at its end.
fn trim_cr(line: &[u8]) -> &[u8] {
    let end = line.iter().rposition(|&b| b != b'\r').map_or(0, |i| i + 1);
    &line[..end]
}

/// Sends `msg` as one line, as a client does: refused if it holds a newline or is over
/// `max` bytes, and then nothing is written.
pub fn write_line(out: &mut impl Write, msg: &str, max: usize) -> Result<(), LineError> {
    if msg.len() > max {
        return Err(LineError::TooLarge {
            len: msg.len(),
            max,
        });
    }
    if msg.contains('\n') {
        return Err(LineError::Newline);
    }
    let mut line = Vec::with_capacity(msg.len() + 1);
    line.extend_from_slice(msg.as_bytes());
    line.push(b'\n');
    out.write_all(&line)?;
    Ok(())
}

/// Reads one server message: lines up to one that ends without `\r`, joined with `\n`.
/// `Ok(None)` when the server closed the connection between messages. Reads at most
/// `max` bytes of text (and the line endings) for one message, however long its lines.
pub fn read_message(input: &mut impl BufRead, max: usize) -> Result<Option<String>, LineError> {
    let mut message = Vec::new();
    let mut got = 0;
    loop {
        let (done, used) = {
            let available = match input.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if available.is_empty() {
                return match got {
                    0 => Ok(None),
                    got => Err(LineError::Unfinished { got }),
                };
            }
            match memchr2(b'\n', IAC, available) {
                Some(i) if available[i] == IAC => return Err(LineError::Telnet),
                Some(i) => {
                    message.extend_from_slice(&available[..i]);
                    (true, i + 1)
                }
                None => {
                    message.extend_from_slice(available);
                    (false, available.len())
                }
            }
        };
        input.consume(used);
        got += used;
        if message.len() > max + 1 {
            return Err(LineError::TooLong { max });
        }
        if !done {
            continue;
        }
        if message.last() == Some(&b'\r') {
            // `\r\n`: the message goes on.
            message.pop();
            message.push(b'\n');
            continue;
        }
        if message.len() > max {
            return Err(LineError::TooLong { max });
        }
        return String::from_utf8(message)
            .map(Some)
            .map_err(|e| LineError::InvalidUtf8 {
                offset: e.utf8_error().valid_up_to(),
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut Lines, bytes: &[u8]) -> Result<Vec<String>, LineError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(msg) = codec.decode(&mut buf)? {
            out.push(msg);
        }
        Ok(out)
    }

    fn encode(msg: &str) -> Vec<u8> {
        let mut out = Outbox::default();
        Lines::with_max(64)
            .encode(Bytes::copy_from_slice(msg.as_bytes()), &mut out)
            .unwrap();
        out.to_vec()
    }

    #[test]
    fn read_crlf_and_lf_lines() {
        let mut codec = Lines::with_max(64);
        let got = decode_all(&mut codec, b"one\r\ntwo\nthree\r\r\n\n").unwrap();
        assert_eq!(got, ["one", "two", "three", ""]);
    }

    #[test]
    fn read_one_byte_at_a_time() {
        let mut codec = Lines::with_max(64);
        let mut buf = BytesMut::new();
        let text = "Привет, мир! 👋\r\n";
        for (i, b) in text.bytes().enumerate() {
            assert!(codec.decode(&mut buf).unwrap().is_none(), "after {i} bytes");
            buf.extend_from_slice(&[b]);
        }
        assert_eq!(
            codec.decode(&mut buf).unwrap().as_deref(),
            Some("Привет, мир! 👋")
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn read_two_lines_in_one_read_keeps_the_rest() {
        let mut codec = Lines::with_max(64);
        let mut buf = BytesMut::from(&b"a\nb\npart"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some("a"));
        assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some("b"));
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert_eq!(&buf[..], b"part");
    }

    #[test]
    fn read_max_line_len_accepted_with_either_ending() {
        for ending in ["\n", "\r\n"] {
            let mut codec = Lines::with_max(10);
            let line = format!("{}{ending}", "x".repeat(10));
            assert_eq!(decode_all(&mut codec, line.as_bytes()).unwrap().len(), 1);
        }
    }

    #[test]
    fn read_over_max_line_len_refused_before_the_newline() {
        let mut codec = Lines::with_max(10);
        // Eleven bytes could still be ten of text and a `\r`; twelve cannot.
        let mut buf = BytesMut::from(&b"xxxxxxxxxxx"[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"x");
        assert!(matches!(
            codec.decode(&mut buf),
            Err(LineError::TooLong { max: 10 })
        ));
        let mut codec = Lines::with_max(10);
        assert!(matches!(
            decode_all(&mut codec, b"xxxxxxxxxxx\n"),
            Err(LineError::TooLong { max: 10 })
        ));
    }

    #[test]
    fn read_endless_carriage_returns_are_refused_too() {
        let mut codec = Lines::with_max(10);
        let flood = vec![b'\r'; 100];
        assert!(matches!(
            decode_all(&mut codec, &flood),
            Err(LineError::TooLong { .. })
        ));
    }

    #[test]
    fn read_invalid_utf8_names_the_offset() {
        let mut codec = Lines::with_max(64);
        assert!(matches!(
            decode_all(&mut codec, b"ab\xC3\x28\n"),
            Err(LineError::InvalidUtf8 { offset: 2 })
        ));
    }

    #[test]
    fn read_telnet_negotiation_is_refused_at_once() {
        // IAC DO ECHO, as a telnet client may send on connecting: no newline needed.
        let mut codec = Lines::with_max(64);
        assert!(matches!(
            decode_all(&mut codec, &[0xFF, 0xFD, 0x01]),
            Err(LineError::Telnet)
        ));
    }

    #[test]
    fn write_one_line_message() {
        assert_eq!(encode("hello"), b"hello\n");
        assert_eq!(encode(""), b"\n");
    }

    #[test]
    fn write_several_lines_marks_all_but_the_last() {
        assert_eq!(encode("a\nb\nc"), b"a\r\nb\r\nc\n");
        assert_eq!(
            encode("a\n"),
            b"a\r\n\n",
            "a last empty line is still a line"
        );
        assert_eq!(
            encode("a\r\nb\r"),
            b"a\r\nb\n",
            "no line keeps a trailing \\r"
        );
    }

    #[test]
    fn write_over_max_refused_and_nothing_queued() {
        let mut out = Outbox::default();
        let err = Lines::with_max(4)
            .encode(Bytes::from_static(b"12345"), &mut out)
            .unwrap_err();
        assert!(matches!(err, LineError::TooLarge { len: 5, max: 4 }));
        assert!(out.to_vec().is_empty());
    }

    #[test]
    fn what_the_server_writes_the_client_reads_back() {
        for msg in ["hello", "", "two\nlines", "end\n", "\n\n", "🦀\nкраб"] {
            let wire = encode(msg);
            let mut r = &wire[..];
            assert_eq!(read_message(&mut r, 64).unwrap().as_deref(), Some(msg));
            assert!(r.is_empty(), "{msg:?}");
        }
    }

    #[test]
    fn client_read_refuses_cut_and_oversized_messages() {
        assert!(matches!(
            read_message(&mut &b"no newline"[..], 64),
            Err(LineError::Unfinished { got: 10 })
        ));
        assert!(matches!(
            read_message(&mut &b"first\r\nsecond"[..], 64),
            Err(LineError::Unfinished { got: 13 })
        ));
        for long in [&b"xxxxxx\n"[..], b"xxxxx\n", b"xx\r\nxx\n"] {
            assert!(matches!(
                read_message(&mut &long[..], 4),
                Err(LineError::TooLong { max: 4 })
            ));
        }
    }

    #[test]
    fn client_write_refuses_newlines_and_oversized_lines() {
        let mut out = Vec::new();
        assert!(matches!(
            write_line(&mut out, "a\nb", 64),
            Err(LineError::Newline)
        ));
        assert!(matches!(
            write_line(&mut out, "xxxxx", 4),
            Err(LineError::TooLarge { len: 5, max: 4 })
        ));
        assert!(out.is_empty());
    }
}
