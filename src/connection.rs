//! One framed connection on the async side: messages in, messages out.
//!
//! Invariant: memory per connection is bounded whatever the peer sends. The read buffer
//! holds at most one unfinished frame (checked against the maximum as soon as its header
//! is in) plus one read chunk; the write buffer is flushed once it passes
//! [`FLUSH_AT`] and before every wait for the peer.
//!
//! Replies to frames that arrived together are written together: `read_message` only
//! flushes when no whole frame is left in the read buffer, so a pipelining client gets one
//! write for a batch instead of one per message.
//!
//! `read_message` is cancel safe: reads go straight into the buffer and writes advance it,
//! so after a `select!` drops it nothing is lost or sent twice, and a final notice can
//! still be written after it.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout, timeout_at};

use crate::frame::{self, FrameError, HEADER_LEN};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 8 * 1024;
/// Pending replies are written out once they reach this size, even mid-batch.
pub const FLUSH_AT: usize = 64 * 1024;
/// How long a closing connection waits for the peer to finish before dropping it.
const LINGER: Duration = Duration::from_secs(1);

/// Limits applied to one connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest payload accepted or sent, in bytes.
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

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("no message for {}", humantime::format_duration(*.0))]
    Idle(Duration),
    #[error("message not finished within {}", humantime::format_duration(*.0))]
    FrameTimeout(Duration),
    #[error("peer did not read its replies for {}", humantime::format_duration(*.0))]
    WriteTimeout(Duration),
}

impl From<std::io::Error> for ConnectionError {
    fn from(e: std::io::Error) -> Self {
        ConnectionError::Frame(FrameError::Io(e))
    }
}

pub struct Connection<S> {
    stream: S,
    limits: Limits,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// When the first byte of the unfinished frame in `rbuf` arrived.
    frame_started: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S, limits: Limits) -> Self {
        Connection {
            stream,
            limits,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            frame_started: None,
        }
    }

    /// The next message, or `None` when the peer closed the connection between messages.
    pub async fn read_message(&mut self) -> Result<Option<String>, ConnectionError> {
        loop {
            if let Some(payload) = frame::decode(&mut self.rbuf, self.limits.max_frame)? {
                self.frame_started = (!self.rbuf.is_empty()).then(Instant::now);
                return Ok(Some(frame::payload_to_string(payload.into())?));
            }
            self.flush().await?;

            self.rbuf.reserve(READ_CHUNK);
            let read = self.stream.read_buf(&mut self.rbuf);
            let n = match self.frame_started {
                None => timeout(self.limits.idle_timeout, read)
                    .await
                    .map_err(|_| ConnectionError::Idle(self.limits.idle_timeout))??,
                Some(start) => timeout_at(start + self.limits.frame_timeout, read)
                    .await
                    .map_err(|_| ConnectionError::FrameTimeout(self.limits.frame_timeout))??,
            };
            if n == 0 {
                return match self.unfinished_frame_len() {
                    None => Ok(None),
                    Some(expected) => Err(FrameError::Truncated {
                        got: self.rbuf.len(),
                        expected,
                    }
                    .into()),
                };
            }
            self.frame_started.get_or_insert_with(Instant::now);
        }
    }

    /// Queues one message; it is sent at the next flush or read.
    pub async fn write_message(&mut self, msg: &str) -> Result<(), ConnectionError> {
        frame::encode(msg, self.limits.max_frame, &mut self.wbuf)?;
        if self.wbuf.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends everything queued, within the write deadline.
    pub async fn flush(&mut self) -> Result<(), ConnectionError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let deadline = self.limits.frame_timeout;
        timeout(deadline, self.stream.write_all_buf(&mut self.wbuf))
            .await
            .map_err(|_| ConnectionError::WriteTimeout(deadline))??;
        Ok(())
    }

    /// Sends what is queued, then closes politely: half-close, and wait briefly for the
    /// peer to close its side. Dropping a socket with unread input sends a reset, which
    /// can destroy the last message before the peer has read it.
    pub async fn close(mut self) -> Result<(), ConnectionError> {
        self.flush().await?;
        self.stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        let drain = async {
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

    /// Total length of the frame that `rbuf` has begun, if it holds part of one.
    fn unfinished_frame_len(&self) -> Option<usize> {
        match self.rbuf.first_chunk::<HEADER_LEN>() {
            _ if self.rbuf.is_empty() => None,
            None => Some(HEADER_LEN),
            Some(h) => Some(HEADER_LEN + u32::from_be_bytes(*h) as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncWriteExt, duplex};

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
        let mut conn = Connection::new(ours, limits());
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
        let mut conn = Connection::new(ours, limits());
        peer.write_all(&[0, 0, 0, 9, b'a', b'b']).await.unwrap();
        drop(peer);
        let err = conn.read_message().await.unwrap_err();
        assert!(
            matches!(
                err,
                ConnectionError::Frame(FrameError::Truncated {
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
        let mut conn = Connection::new(ours, limits());
        peer.write_all(&[0, 0, 0, 101]).await.unwrap();
        let err = conn.read_message().await.unwrap_err();
        assert!(
            matches!(
                err,
                ConnectionError::Frame(FrameError::TooLarge { len: 101, max: 100 })
            ),
            "{err:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_timeout_between_messages() {
        let (_peer, ours) = duplex(64);
        let mut conn = Connection::new(ours, limits());
        let err = conn.read_message().await.unwrap_err();
        assert!(matches!(err, ConnectionError::Idle(_)), "{err:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn frame_deadline_is_not_reset_by_trickling() {
        let (mut peer, ours) = duplex(64);
        let mut conn = Connection::new(ours, limits());
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
        let mut conn = Connection::new(ours, limits());
        peer.write_all(&[0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b'])
            .await
            .unwrap();
        for expected in ["a", "b"] {
            let msg = conn.read_message().await.unwrap().unwrap();
            assert_eq!(msg, expected);
            conn.write_message(&msg).await.unwrap();
        }
        // Nothing was sent yet: both replies wait for the flush.
        assert_eq!(conn.wbuf.len(), 10);
        conn.flush().await.unwrap();
        let mut got = [0u8; 10];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b']);
    }

    #[tokio::test]
    async fn write_refuses_oversized_message() {
        let (_peer, ours) = duplex(64);
        let mut conn = Connection::new(ours, limits());
        assert!(conn.write_message(&"x".repeat(101)).await.is_err());
        assert!(conn.wbuf.is_empty());
    }
}
