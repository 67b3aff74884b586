//! The transport: how a server gets its byte streams.
//!
//! - [`listen`]: the listening socket, moving on to the next port when one is taken
//!   (lab task 6).
//! - [`source`]: where a connection comes from, as limits and penalties count it.
//! - [`tls`]: the certificate and acceptor of `--tls`.
//!
//! Above this layer a connection is a [`Stream`]: bytes in, bytes out, whatever carries
//! them.

pub mod listen;
pub mod source;
pub mod tls;

pub use source::Source;

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

/// The two ends of an accepted connection.
#[derive(Clone, Copy, Debug)]
pub struct Ends {
    /// The client.
    pub peer: SocketAddr,
    /// The server's own address on this connection (its port is the listening port).
    pub local: SocketAddr,
}

/// A connection's byte stream, whatever its transport.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}
