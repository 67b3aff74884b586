//! The conversation loop: a connection's messages in, a [`Handler`]'s replies out.
//!
//! Invariant: the server speaks first, then sends exactly one message for each message it
//! receives. A client that loops "read a message, show it, send a line" therefore stays in
//! step in every mode and codec. The only other message is a last one before the server
//! closes (shutdown, timeout, a broken message), after which nothing follows.
//!
//! Written once for every transport, codec and handler: the deadlines, the shutdown
//! notice and what reaches the log are the same whoever the client is.

use std::marker::PhantomData;

use log::debug;
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;

use super::{Service, Tally};
use crate::handler::{Handler, Peer, Reply};
use crate::transport::{Ends, Stream};
use crate::wire::Codec;
use crate::wire::connection::{Connection, ConnectionError, Limits};

/// Sent to every connected client when the server stops.
pub const SHUTDOWN_NOTICE: &str = "server is shutting down, goodbye";
/// Sent when a handler fails on a message; the cause is logged, never sent.
pub const INTERNAL_ERROR: &str =
    "error: the server could not handle this message; closing the connection";

/// A [`Handler`] spoken to in messages of codec `C`.
pub struct Conversation<C, H> {
    handler: H,
    limits: Limits,
    codec: PhantomData<fn() -> C>,
}

impl<C: Codec, H: Handler> Conversation<C, H> {
    pub fn new(handler: H, limits: Limits) -> Self {
        Conversation {
            handler,
            limits,
            codec: PhantomData,
        }
    }
}

impl<C: Codec, H: Handler> Service for Conversation<C, H> {
    const UNIT: &'static str = "message";

    async fn serve_connection<S: Stream>(
        &self,
        stream: S,
        ends: Ends,
        shutdown: CancellationToken,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        let mut conn = Connection::<S, C>::new(stream, self.limits);
        let addr = ends.peer;
        let peer = Peer {
            addr,
            local_port: ends.local.port(),
            plain_text: C::PLAIN_TEXT,
        };
        let (mut state, greeting) = self.handler.greet(&peer).await?;
        if send(&mut conn, greeting, tally).await? {
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
                last = self.handler.ended(&mut state) => {
                    send(&mut conn, last, tally).await?;
                    return Ok(conn.close().await?);
                }
                () = &mut stopping => {
                    send(&mut conn, Reply::close(SHUTDOWN_NOTICE), tally).await?;
                    return Ok(conn.close().await?);
                }
                () = expired => {
                    let notice = deadline.map_or("", |(_, notice)| notice);
                    send(&mut conn, Reply::close(notice), tally).await?;
                    conn.close().await?;
                    anyhow::bail!("{notice}");
                }
            };
            let message = match read {
                Ok(Some(message)) => message,
                Ok(None) => return Ok(()),
                Err(e) => return Err(say_goodbye(conn, e, tally).await.into()),
            };
            tally.received += 1;
            if self.handler.may_log(&state, &message) {
                // Debug formatting escapes control characters a client may have sent.
                debug!("{addr}: received {message:?}");
            } else {
                debug!("{addr}: received a message that is not logged");
            }
            let reply = match self.handler.reply(&mut state, message).await {
                Ok(reply) => reply,
                Err(e) => {
                    // The client learns that the fault is ours; the details go to the log.
                    let _ = send(&mut conn, Reply::close(INTERNAL_ERROR), tally).await;
                    let _ = conn.close().await;
                    return Err(e);
                }
            };
            if send(&mut conn, reply, tally).await? {
                return Ok(conn.close().await?);
            }
        }
    }

    /// One message, before any handler work, then the close.
    async fn refuse<S: Stream>(&self, stream: S, why: String) {
        let mut conn = Connection::<S, C>::new(stream, self.limits);
        if conn.write_message(why).await.is_ok() {
            let _ = conn.close().await;
        }
    }
}

/// Queues `reply` and counts it; true when the conversation ends with it.
async fn send<S: Stream, C: Codec>(
    conn: &mut Connection<S, C>,
    reply: Reply,
    tally: &mut Tally,
) -> Result<bool, ConnectionError<C::Error>> {
    conn.write_message(reply.text).await?;
    tally.sent += 1;
    Ok(reply.close)
}

/// Tells the client why its connection ends, where the connection can still carry a
/// message, then closes it. Returns the error for the log.
async fn say_goodbye<S: Stream, C: Codec>(
    mut conn: Connection<S, C>,
    e: ConnectionError<C::Error>,
    tally: &mut Tally,
) -> ConnectionError<C::Error> {
    if e.can_tell_peer() {
        let notice = format!("error: {e}; closing the connection");
        if send(&mut conn, Reply::close(notice), tally).await.is_ok() {
            let _ = conn.close().await;
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{ServerConfig, serve};
    use crate::wire::Framed;
    use tokio::net::{TcpListener, TcpStream};

    /// Greets, then fails on every message.
    struct Failing;

    impl Handler for Failing {
        type State = ();
        async fn greet(&self, _: &Peer) -> anyhow::Result<((), Reply)> {
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
            Conversation::<Framed, _>::new(Failing, Limits::default()),
            ServerConfig::default(),
            stop.clone().cancelled_owned(),
        ));

        let stream = TcpStream::connect(addr).await.unwrap();
        let mut client = Connection::<_, Framed>::new(stream, Limits::default());
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
