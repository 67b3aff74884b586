//! The wire: how messages become bytes and back.
//!
//! - [`frame`]: the length-prefixed frame (lab task 9), with blocking `send_msg` and
//!   `recv_msg` for any `Read`/`Write`; its module doc is the specification.
//! - [`connection`]: messages over any async stream, with the idle, frame and write
//!   deadlines.

pub mod connection;
pub mod frame;

/// How a connection's bytes are cut into messages, as chosen by `--codec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CodecKind {
    /// Length-prefixed frames ([`frame`]).
    Framed,
    /// No messages: bytes back verbatim (echo only).
    Raw,
}
