//! The wire: how messages become bytes and back.
//!
//! - [`frame`]: length-prefixed frames (lab task 9), with blocking `send_msg` and
//!   `recv_msg` for any `Read`/`Write`; its module doc is the specification.
//! - [`lines`]: one line of UTF-8 text per message, for nc, telnet and readline
//!   clients; its module doc is the specification.
//! - [`codec`]: what a codec promises the connection; [`outbox`]: encoded output
//!   waiting to be written.
//! - [`connection`]: messages over any async stream in either codec, with the idle,
//!   frame and write deadlines.
//!
//! Invariant: a codec owns its limits and its errors, and never sees a socket, a
//! deadline or a handler: [`connection::Connection`] drives it.

pub mod codec;
pub mod connection;
pub mod frame;
pub mod lines;
pub mod outbox;

pub use codec::{Codec, PeerError};
pub use frame::Framed;
pub use lines::Lines;
pub use outbox::Outbox;

/// How a connection's bytes are cut into messages, as chosen by `--codec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CodecKind {
    /// Length-prefixed frames: a 4-byte length, then the message (see `wire::frame`).
    Framed,
    /// One line of text per message (see `wire::lines`).
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
