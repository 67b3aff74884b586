//! Server modes as message handlers, and the conversation loop that drives them.
//!
//! Invariant: the server speaks first, then sends exactly one message for each message it
//! receives. A client that loops "read a message, show it, send a line" therefore stays in
//! step in every mode. The only other message is a last one before the server closes
//! (shutdown, timeout, a broken frame), after which nothing follows.

use std::future::Future;
use std::net::SocketAddr;

use log::debug;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::Protocol;
use crate::connection::{Connection, ConnectionError, Limits};
use crate::frame::FrameError;

/// Sent to every connected client when the server stops.
pub const SHUTDOWN_NOTICE: &str = "server is shutting down, goodbye";
/// Sent when a handler fails on a message; the cause is logged, never sent.
pub const INTERNAL_ERROR: &str =
    "error: the server could not handle this message; closing the connection";

/// One server mode: what it says first and how it answers. Handlers see messages, never
/// bytes; one value serves every connection, and what a mode must remember about one
/// connection lives in its `State`.
pub trait Handler: Send + Sync + 'static {
    type State: Send;

    /// The greeting for a new client, and the state of its conversation.
    fn greet(
        &self,
        peer: SocketAddr,
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

/// The framed protocol: messages in, [`Handler`] replies out.
pub struct Framed<H> {
    handler: H,
    limits: Limits,
}

impl<H: Handler> Framed<H> {
    pub fn new(handler: H, limits: Limits) -> Self {
        Framed { handler, limits }
    }
}

impl<H: Handler> Protocol for Framed<H> {
    async fn serve_connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let _ = stream.set_nodelay(true);
        let mut conn = Connection::new(stream, self.limits);
        let (mut state, greeting) = self.handler.greet(peer).await?;
        if send(&mut conn, greeting).await? {
            return Ok(conn.close().await?);
        }
        // Registered once for the whole connection rather than for each message.
        let stopping = shutdown.cancelled();
        tokio::pin!(stopping);
        loop {
            let deadline = self.handler.deadline(&state);
            let expired = async {
                match deadline {
                    Some((at, _)) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let read = tokio::select! {
                read = conn.read_message() => read,
                () = &mut stopping => {
                    conn.write_message(SHUTDOWN_NOTICE).await?;
                    return Ok(conn.close().await?);
                }
                () = expired => {
                    let notice = deadline.map_or("", |(_, notice)| notice);
                    conn.write_message(notice).await?;
                    conn.close().await?;
                    anyhow::bail!("{notice}");
                }
            };
            let message = match read {
                Ok(Some(message)) => message,
                Ok(None) => return Ok(()),
                Err(e) => return Err(say_goodbye(conn, e).await.into()),
            };
            if self.handler.may_log(&state, &message) {
                // Debug formatting escapes control characters a client may have sent.
                debug!("{peer}: received {message:?}");
            } else {
                debug!("{peer}: received a message that is not logged");
            }
            let reply = match self.handler.reply(&mut state, message).await {
                Ok(reply) => reply,
                Err(e) => {
                    // The client learns that the fault is ours; the details go to the log.
                    let _ = conn.write_message(INTERNAL_ERROR).await;
                    let _ = conn.close().await;
                    return Err(e);
                }
            };
            if send(&mut conn, reply).await? {
                return Ok(conn.close().await?);
            }
        }
    }
}

/// Queues `reply`; true when the conversation ends with it.
async fn send(conn: &mut Connection<TcpStream>, reply: Reply) -> Result<bool, ConnectionError> {
    conn.write_message(reply.text).await?;
    Ok(reply.close)
}

/// Tells the client why its connection ends, where the connection can still carry a
/// message, then closes it. Returns the error for the log.
async fn say_goodbye(mut conn: Connection<TcpStream>, e: ConnectionError) -> ConnectionError {
    let can_tell = match &e {
        ConnectionError::Frame(FrameError::TooLarge { .. } | FrameError::InvalidUtf8 { .. })
        | ConnectionError::Idle(_)
        | ConnectionError::FrameTimeout(_) => true,
        ConnectionError::Frame(FrameError::Truncated { .. } | FrameError::Io(_))
        | ConnectionError::WriteTimeout(_) => false,
    };
    if can_tell {
        let notice = format!("error: {e}; closing the connection");
        if conn.write_message(notice).await.is_ok() {
            let _ = conn.close().await;
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{ServerConfig, serve};
    use tokio::net::TcpListener;

    /// Greets, then fails on every message.
    struct Failing;

    impl Handler for Failing {
        type State = ();
        async fn greet(&self, _: SocketAddr) -> anyhow::Result<((), Reply)> {
            Ok(((), Reply::say("hi")))
        }
        async fn reply(&self, _: &mut (), _: String) -> anyhow::Result<Reply> {
            anyhow::bail!("secret detail that must stay in the log")
        }
    }

    #[tokio::test]
    async fn handler_failure_tells_the_client_without_details_and_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            Framed::new(Failing, Limits::default()),
            ServerConfig::default(),
            stop.clone().cancelled_owned(),
        ));

        let stream = TcpStream::connect(addr).await.unwrap();
        let mut client = Connection::new(stream, Limits::default());
        assert_eq!(client.read_message().await.unwrap().as_deref(), Some("hi"));
        client.write_message("anything").await.unwrap();
        assert_eq!(
            client.read_message().await.unwrap().as_deref(),
            Some(INTERNAL_ERROR)
        );
        assert_eq!(client.read_message().await.unwrap(), None);
        drop(client);

        stop.cancel();
        server.await.unwrap();
    }
}
