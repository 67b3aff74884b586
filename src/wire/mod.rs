//! The wire: how messages become bytes and back.
//!
//! - [`frame`]: length-prefixed frames (lab task 9), with blocking `send_msg` and
//!   `recv_msg` for any `Read`/`Write`; its module doc is the specification.
//! - [`lines`]: one line of UTF-8 text per message, for nc, telnet and readline
//!   clients; its module doc is the specification.
//! - [`connection`]: messages over any async stream in either codec, with the idle,
//!   frame and write deadlines.
//!
//! Invariant: a codec owns its limits and its errors. It refuses a message over its
//! maximum before allocating for it, in both directions, and it never sees a socket, a
//! deadline or a handler: [`connection::Connection`] drives it.

pub mod connection;
pub mod frame;
pub mod lines;

use bytes::{Bytes, BytesMut};

pub use connection::Outbox;
pub use frame::Framed;
pub use lines::Lines;

/// How a connection's bytes are cut into messages, as chosen by `--codec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CodecKind {
    /// Length-prefixed frames ([`frame`]).
    Framed,
    /// One line of text per message ([`lines`]).
    Lines,
    /// No messages: bytes back verbatim (echo only).
    Raw,
}

impl CodecKind {
    pub fn name(self) -> &'static str {
        match self {
            CodecKind::Framed => "framed",
            CodecKind::Lines => "lines",
            CodecKind::Raw => "raw",
        }
    }
}

/// One side of a message codec, as the async [`connection::Connection`] uses it. A value
/// lives as long as its connection, so it may remember where it stopped scanning.
pub trait Codec: Send + 'static {
    /// What the peer can do wrong; it converts into the connection's error.
    type Error: Into<connection::ConnectionError>;

    /// The peer talks in plain lines of text (nc, telnet): it shows whatever is typed
    /// and cannot keep a secret for later. Handlers adapt what they say to this.
    const PLAIN_TEXT: bool;

    /// A codec whose messages are at most `max` bytes.
    fn with_max(max: usize) -> Self;

    /// Takes one whole message off the front of `buf`; `Ok(None)` if more bytes are
    /// needed. An error as soon as the bytes in `buf` can no longer become a message.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, Self::Error>;

    /// The error for a peer that closed the connection with `unfinished`, a non-empty
    /// part of a message, still in the buffer.
    fn truncated(&self, unfinished: &BytesMut) -> Self::Error;

    /// Queues `msg` for sending, or refuses it (too large) with nothing queued.
    fn encode(&mut self, msg: Bytes, out: &mut Outbox) -> Result<(), Self::Error>;
}
