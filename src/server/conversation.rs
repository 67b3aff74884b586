//! The conversation loop: a connection's messages in, a [`Handler`]'s replies out.
//!
//! Invariant: the server speaks first, then sends exactly one message for each message it
//! receives. A client that loops "read a message, show it, send a line" therefore stays in
//! step in every mode. The only other message is a last one before the server closes
//! (shutdown, timeout, a broken frame), after which nothing follows.

use std::net::SocketAddr;

use log::debug;
use tokio::net::TcpStream;
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;

use super::Protocol;
use crate::handler::{Handler, Reply};
use crate::wire::connection::{Connection, ConnectionError, Limits};
use crate::wire::frame::FrameError;

/// Sent to every connected client when the server stops.
pub const SHUTDOWN_NOTICE: &str = "server is shutting down, goodbye";
/// Sent when a handler fails on a message; the cause is logged, never sent.
pub const INTERNAL_ERROR: &str =
    "error: the server could not handle this message; closing the connection";

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
