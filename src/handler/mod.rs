//! Server modes as message handlers: what a mode says first and how it answers.
//!
//! Invariant: a handler sees messages, never bytes, codecs, sockets or TLS. The same
//! handler serves a client of any codec and any transport, and the conversation loop in
//! [`crate::server`] is the only code that drives it.

pub mod auth;
pub mod echo;
pub mod exec;
pub mod gated;
pub mod ident;

use std::future::Future;
use std::net::SocketAddr;

use tokio::time::Instant;

pub use auth::{Auth, AuthConfig, Registration};
pub use echo::Echo;
pub use exec::{Exec, ExecConfig};
pub use gated::Gated;
pub use ident::Ident;

/// Who is on the other end, as far as a handler needs to know.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The server's port on this connection.
    pub local_port: u16,
    /// The client talks in plain lines of text (nc, telnet): it shows whatever is typed,
    /// passwords too, and has no way to keep a session token.
    pub plain_text: bool,
}

/// One server mode. One value serves every connection; what a mode must remember about
/// one connection lives in its `State`.
pub trait Handler: Send + Sync + 'static {
    type State: Send;

    /// The greeting for a new client, and the state of its conversation.
    fn greet(
        &self,
        peer: &Peer,
    ) -> impl Future<Output = anyhow::Result<(Self::State, Reply)>> + Send;

    /// The answer to one message.
    fn reply(
        &self,
        state: &mut Self::State,
        message: String,
    ) -> impl Future<Output = anyhow::Result<Reply>> + Send;

    /// A time by which the conversation must have moved on (a login deadline, say), and
    /// what to tell the client if it has not; the connection is closed then.
    fn deadline(&self, _state: &Self::State) -> Option<(Instant, &'static str)> {
        None
    }

    /// Whether `message` may appear in the debug log. Passwords and tokens must not.
    fn may_log(&self, _state: &Self::State, _message: &str) -> bool {
        true
    }

    /// Completes when the mode ends the conversation on its own, between two messages
    /// (a plugin's program exits), with the last message; by default, never. It must
    /// be cancel safe: it is dropped whenever a message arrives first.
    fn ended(&self, _state: &mut Self::State) -> impl Future<Output = Reply> + Send {
        std::future::pending()
    }
}

/// A message for the client, and whether the conversation goes on after it.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub close: bool,
}

impl Reply {
    pub fn say(text: impl Into<String>) -> Self {
        Reply {
            text: text.into(),
            close: false,
        }
    }

    /// The last message: the server closes the connection after it.
    pub fn close(text: impl Into<String>) -> Self {
        Reply {
            text: text.into(),
            close: true,
        }
    }
}
