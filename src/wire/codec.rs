//! The contract between a codec and the connection that drives it.
//!
//! Invariant: a codec sees bytes and messages only: never a socket, a deadline or a
//! handler. It refuses a message over its maximum before allocating for it, in both
//! directions, and says of each of its errors whether the peer can still be told.

use bytes::{Bytes, BytesMut};

use super::outbox::Outbox;

/// An error of a codec: what a peer did wrong, or how it left.
pub trait PeerError: std::error::Error + Send + Sync + 'static {
    /// Whether the peer broke a rule and is still there to be told why; not when it has
    /// left in the middle of a message, or the connection broke.
    fn can_tell_peer(&self) -> bool;
}

/// One side of a message codec, as the async [`Connection`](super::connection::Connection)
/// uses it. A value lives as long as its connection, so it may remember where it
/// stopped scanning.
pub trait Codec: Send + 'static {
    type Error: PeerError;

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
