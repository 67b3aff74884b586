//! One message connection on the async side: messages in, messages out, over any byte
//! stream (TCP, TLS) and in either codec ([`Framed`](super::Framed) or
//! [`Lines`](super::Lines)).
//!
//! Invariant: memory per connection is bounded whatever the peer sends. The read buffer
//! holds at most one unfinished message (the codec refuses one over the maximum as soon
//! as it can tell) plus one read chunk; pending output is flushed once it passes
//! [`FLUSH_AT`] and before every wait for the peer.
//!
//! Replies to messages that arrived together are written together: `read_message` only
//! flushes when no whole message is left in the read buffer, so a pipelining client gets
//! one write for a batch instead of one per message. Small pieces of output are gathered
//! into one buffer; a large one is queued as it is, moved rather than copied, and the lot
//! leaves in one vectored write (see [`Outbox`]).
//!
//! Deadlines cost no timer operation per message: one timer per connection stays armed,
//! moved earlier when a message has begun, and when it fires early (the connection was
//! active since) it is simply re-armed.
//!
//! `read_message` is cancel safe: reads go straight into the buffer, and output is
//! advanced only by what a completed write took, so after a `select!` drops it nothing
//! is lost or sent twice, and a final notice can still be written after it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep, sleep_until, timeout, timeout_at};

use super::codec::{Codec, PeerError};
use super::frame::{self, HEADER_LEN};
use super::outbox::Outbox;

/// Bytes asked of the socket per read: from 8 KiB, doubled while reads fill what was
/// offered (a pipelining peer), halved while they come in small, at most 64 KiB. Quiet
/// connections stay small; busy ones get whole batches per read, and so per write.
const MIN_READ: usize = 8 * 1024;
const MAX_READ: usize = 64 * 1024;
/// Pending replies are written out once they reach this size, even mid-batch.
pub const FLUSH_AT: usize = 64 * 1024;
/// How long a closing connection waits for the peer to finish before dropping it.
const LINGER: Duration = Duration::from_secs(1);

/// Limits applied to one connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest message accepted or sent, in bytes.
    pub max_frame: usize,
    /// Longest wait for the first byte of the next message.
    pub idle_timeout: Duration,
    /// Longest time from a message's first byte to its last; also the longest a write
    /// may wait for a peer that does not read.
    pub frame_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: frame::DEFAULT_MAX_FRAME,
            idle_timeout: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a connection ended other than by the peer leaving between messages. `E` is the
/// codec's error.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError<E> {
    #[error(transparent)]
    Codec(E),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("no message for {}", humantime::format_duration(*.0))]
    Idle(Duration),
    #[error("message not finished within {}", humantime::format_duration(*.0))]
    FrameTimeout(Duration),
    #[error("peer did not read its replies for {}", humantime::format_duration(*.0))]
    WriteTimeout(Duration),
}

impl<E: PeerError> ConnectionError<E> {
    /// Whether the peer can still be told why its connection ends: it broke a rule of
    /// the codec, or was too slow to send. Not when it left, or stopped reading.
    pub fn can_tell_peer(&self) -> bool {
        match self {
            ConnectionError::Codec(e) => e.can_tell_peer(),
            ConnectionError::Idle(_) | ConnectionError::FrameTimeout(_) => true,
            ConnectionError::Io(_) | ConnectionError::WriteTimeout(_) => false,
        }
    }
}

pub struct Connection<S, C> {
    stream: S,
    codec: C,
    limits: Limits,
    rbuf: BytesMut,
    out: Outbox,
    /// When the first byte of the unfinished message in `rbuf` arrived.
    frame_started: Option<Instant>,
    read_size: usize,
    /// When the last whole message arrived (or the connection began).
    last_message: Instant,
    /// Fires at or before the next deadline; see the module doc.
    timer: Pin<Box<Sleep>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin, C: Codec> Connection<S, C> {
    pub fn new(stream: S, limits: Limits) -> Self {
        Connection {
            stream,
            codec: C::with_max(limits.max_frame),
            limits,
            rbuf: BytesMut::new(),
            out: Outbox::default(),
            frame_started: None,
            read_size: MIN_READ,
            last_message: Instant::now(),
            timer: Box::pin(sleep_until(Instant::now() + limits.idle_timeout)),
        }
    }

    /// The next message, or `None` when the peer closed the connection between messages.
    pub async fn read_message(&mut self) -> Result<Option<String>, ConnectionError<C::Error>> {
        loop {
            if let Some(message) = self
                .codec
                .decode(&mut self.rbuf)
                .map_err(ConnectionError::Codec)?
            {
                let now = Instant::now();
                self.last_message = now;
                self.frame_started = (!self.rbuf.is_empty()).then_some(now);
                return Ok(Some(message));
            }
            self.flush().await?;

            self.rbuf.reserve(self.read_size);
            let offered = self.rbuf.capacity() - self.rbuf.len();
            let due = self.due();
            if due < self.timer.deadline() {
                self.timer.as_mut().reset(due);
            }
            let n = tokio::select! {
                biased;
                n = self.stream.read_buf(&mut self.rbuf) => n?,
                () = self.timer.as_mut() => {
                    let due = self.due();
                    if Instant::now() < due {
                        self.timer.as_mut().reset(due);
                        continue;
                    }
                    return Err(match self.frame_started {
                        None => ConnectionError::Idle(self.limits.idle_timeout),
                        Some(_) => ConnectionError::FrameTimeout(self.limits.frame_timeout),
                    });
                }
            };
            if n == 0 {
                return match self.rbuf.is_empty() {
                    true => Ok(None),
                    false => Err(ConnectionError::Codec(self.codec.truncated(&self.rbuf))),
                };
            }
            self.read_size = if n == offered {
                (self.read_size * 2).min(MAX_READ)
            } else if n < self.read_size / 4 {
                (self.read_size / 2).max(MIN_READ)
            } else {
                self.read_size
            };
            self.frame_started.get_or_insert_with(Instant::now);
        }
    }

    /// The deadline in force: the message's, once one has begun, else the idle one.
    fn due(&self) -> Instant {
        match self.frame_started {
            Some(start) => start + self.limits.frame_timeout,
            None => self.last_message + self.limits.idle_timeout,
        }
    }

    /// Queues one message; it is sent at the next flush or read.
    pub async fn write_message(
        &mut self,
        msg: impl Into<Bytes>,
    ) -> Result<(), ConnectionError<C::Error>> {
        self.codec
            .encode(msg.into(), &mut self.out)
            .map_err(ConnectionError::Codec)?;
        if self.out.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends everything queued, within the write deadline.
    pub async fn flush(&mut self) -> Result<(), ConnectionError<C::Error>> {
        let limit = self.limits.frame_timeout;
        let mut deadline = None;
        while !self.out.is_empty() {
            let write = std::future::poll_fn(|cx| self.out.poll_write_to(&mut self.stream, cx));
            tokio::pin!(write);
            // Nearly every write completes at once. The deadline needs a timer, and a
            // timer costs shared state, so it is armed only for a write that has to wait.
            let at_once = match deadline {
                None => write.as_mut().poll(&mut Context::from_waker(Waker::noop())),
                Some(_) => Poll::Pending,
            };
            let written = match at_once {
                Poll::Ready(written) => written?,
                Poll::Pending => {
                    let due = *deadline.get_or_insert_with(|| Instant::now() + limit);
                    timeout_at(due, write)
                        .await
                        .map_err(|_| ConnectionError::WriteTimeout(limit))??
                }
            };
            if written == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero).into());
            }
            self.out.consume(written);
        }
        Ok(())
    }

    /// Sends what is queued, then closes politely: half-close, and wait briefly for the
    /// peer to close its side. Dropping a socket with unread input sends a reset, which
    /// can destroy the last message before the peer has read it.
    pub async fn close(mut self) -> Result<(), ConnectionError<C::Error>> {
        self.flush().await?;
        self.stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        let drain = async {
            // At most one more message's worth, whatever its codec.
            let mut left = self.limits.max_frame + HEADER_LEN;
            while left > 0 {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        };
        let _ = timeout(LINGER, drain).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::FrameError;
    use crate::wire::lines::LineError;
    use crate::wire::{Framed, Lines};
    use tokio::io::{AsyncWriteExt, DuplexStream, duplex};

    fn framed(stream: DuplexStream) -> Connection<DuplexStream, Framed> {
        Connection::new(stream, limits())
    }

    fn lines(stream: DuplexStream) -> Connection<DuplexStream, Lines> {
        Connection::new(stream, limits())
    }

    fn limits() -> Limits {
        Limits {
            max_frame: 100,
            idle_timeout: Duration::from_secs(60),
            frame_timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn reads_frames_split_anywhere() {
        let (mut peer, ours) = duplex(64);
        let mut conn = framed(ours);
        let mut bytes = vec![0, 0, 0, 5];
        bytes.extend_from_slice(b"hello");
        bytes.extend_from_slice(&[0, 0, 0, 4]);
        bytes.extend_from_slice("ёж".as_bytes());
        tokio::spawn(async move {
            for b in bytes {
                peer.write_all(&[b]).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        assert_eq!(conn.read_message().await.unwrap().as_deref(), Some("hello"));
        assert_eq!(conn.read_message().await.unwrap().as_deref(), Some("ёж"));
        assert!(conn.read_message().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn close_inside_frame_is_truncated() {
        let (mut peer, ours) = duplex(64);
        let mut conn = framed(ours);
        peer.write_all(&[0, 0, 0, 9, b'a', b'b']).await.unwrap();
        drop(peer);
        let err = conn.read_message().await.unwrap_err();
        assert!(
            matches!(
                err,
                ConnectionError::Codec(FrameError::Truncated {
                    got: 6,
                    expected: 13
                })
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn oversized_header_rejected_without_payload() {
        let (mut peer, ours) = duplex(64);
        let mut conn = framed(ours);
        peer.write_all(&[0, 0, 0, 101]).await.unwrap();
        let err = conn.read_message().await.unwrap_err();
        assert!(
            matches!(
                err,
                ConnectionError::Codec(FrameError::TooLarge { len: 101, max: 100 })
            ),
            "{err:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_timeout_between_messages() {
        let (_peer, ours) = duplex(64);
        let mut conn = framed(ours);
        let err = conn.read_message().await.unwrap_err();
        assert!(matches!(err, ConnectionError::Idle(_)), "{err:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn activity_keeps_a_connection_open_past_the_idle_limit() {
        let (mut peer, ours) = duplex(64);
        let mut conn = framed(ours); // idle limit 60 s
        let started = Instant::now();
        tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(40)).await;
                peer.write_all(&[0, 0, 0, 1, b'x']).await.unwrap();
            }
            // Then silence, with the connection still open.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(peer);
        });
        for _ in 0..3 {
            assert_eq!(conn.read_message().await.unwrap().as_deref(), Some("x"));
        }
        // 120 s in: the timer first armed for 60 s has fired and been re-armed.
        let err = conn.read_message().await.unwrap_err();
        assert!(matches!(err, ConnectionError::Idle(_)), "{err:?}");
        assert_eq!(
            started.elapsed().as_secs(),
            180,
            "closed 60 s after the last message"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn frame_deadline_is_not_reset_by_trickling() {
        let (mut peer, ours) = duplex(64);
        let mut conn = framed(ours);
        // One byte every second: each read succeeds, but the frame takes too long.
        tokio::spawn(async move {
            for b in [0u8, 0, 0, 50].into_iter().chain([b'x'; 50]) {
                if peer.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let started = Instant::now();
        let err = conn.read_message().await.unwrap_err();
        assert!(matches!(err, ConnectionError::FrameTimeout(_)), "{err:?}");
        assert!(started.elapsed() <= Duration::from_secs(6));
    }

    #[tokio::test]
    async fn batched_replies_leave_in_one_flush() {
        let (mut peer, ours) = duplex(1024);
        let mut conn = framed(ours);
        peer.write_all(&[0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b'])
            .await
            .unwrap();
        for expected in ["a", "b"] {
            let msg = conn.read_message().await.unwrap().unwrap();
            assert_eq!(msg, expected);
            conn.write_message(msg).await.unwrap();
        }
        // Nothing was sent yet: both replies wait for the flush.
        assert_eq!(conn.out.len(), 10);
        conn.flush().await.unwrap();
        let mut got = [0u8; 10];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b']);
    }

    #[tokio::test]
    async fn large_and_small_replies_leave_in_order_even_in_pieces() {
        // A peer that reads 7 bytes at a time forces partial vectored writes.
        let (mut peer, ours) = duplex(7);
        let mut conn = framed(ours);
        let big = "б".repeat(50); // 100 bytes, the maximum
        conn.write_message("hi").await.unwrap();
        conn.write_message(big.clone()).await.unwrap();
        conn.write_message("yo").await.unwrap();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.unwrap();
            got
        });
        conn.flush().await.unwrap();
        drop(conn);
        let mut expected = vec![0, 0, 0, 2, b'h', b'i', 0, 0, 0, 100];
        expected.extend_from_slice(big.as_bytes());
        expected.extend_from_slice(&[0, 0, 0, 2, b'y', b'o']);
        assert_eq!(reader.await.unwrap(), expected);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_does_not_read_hits_the_write_deadline() {
        let (_peer, ours) = duplex(16); // never read
        let mut conn = framed(ours); // frame timeout 5 s
        let started = Instant::now();
        conn.write_message("x".repeat(100)).await.unwrap();
        let err = conn.flush().await.unwrap_err();
        assert!(matches!(err, ConnectionError::WriteTimeout(_)), "{err:?}");
        assert_eq!(started.elapsed().as_secs(), 5);
    }

    #[tokio::test]
    async fn write_refuses_oversized_message() {
        let (_peer, ours) = duplex(64);
        let mut conn = framed(ours);
        assert!(conn.write_message("x".repeat(101)).await.is_err());
        assert!(conn.out.is_empty());
    }

    #[tokio::test]
    async fn lines_in_crlf_and_lf_and_replies_as_lines() {
        let (mut peer, ours) = duplex(1024);
        let mut conn = lines(ours);
        peer.write_all("one\r\nдва\n".as_bytes()).await.unwrap();
        for expected in ["one", "два"] {
            let msg = conn.read_message().await.unwrap().unwrap();
            assert_eq!(msg, expected);
            conn.write_message(msg).await.unwrap();
        }
        conn.write_message("a\nb").await.unwrap();
        conn.flush().await.unwrap();
        drop(conn);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, "one\nдва\na\r\nb\n".as_bytes());
    }

    #[tokio::test]
    async fn a_line_cut_by_the_close_is_an_error() {
        let (mut peer, ours) = duplex(64);
        let mut conn = lines(ours);
        peer.write_all(b"whole\nhal").await.unwrap();
        drop(peer);
        assert_eq!(conn.read_message().await.unwrap().as_deref(), Some("whole"));
        let err = conn.read_message().await.unwrap_err();
        assert!(
            matches!(
                err,
                ConnectionError::Codec(LineError::Unfinished { got: 3 })
            ),
            "{err:?}"
        );
        assert!(!err.can_tell_peer());
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_line_hits_the_frame_deadline() {
        let (mut peer, ours) = duplex(64);
        let mut conn = lines(ours);
        tokio::spawn(async move {
            for _ in 0..50 {
                if peer.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let started = Instant::now();
        let err = conn.read_message().await.unwrap_err();
        assert!(matches!(err, ConnectionError::FrameTimeout(_)), "{err:?}");
        assert!(started.elapsed() <= Duration::from_secs(6));
        assert!(err.can_tell_peer());
    }
}
