//! The wire format: every message is one length-prefixed frame.
//!
//! ```text
//! +---------------------------+--------------------------------+
//! | length: u32, big-endian   | payload: `length` bytes, UTF-8 |
//! +---------------------------+--------------------------------+
//!   4 bytes, counts BYTES        no terminator, no padding
//! ```
//!
//! The length counts bytes of the UTF-8 payload, not characters: "привет" is six
//! characters and twelve bytes, so its header is `00 00 00 0c`. Python writes the same
//! header with `struct.pack('!I', len(payload))`.
//!
//! ```
//! use netlab::wire::frame::{RecvMsg, SendMsg};
//!
//! let mut wire = Vec::new();
//! wire.send_msg("привет")?;
//! assert_eq!(wire[..4], [0x00, 0x00, 0x00, 0x0c]);
//! assert_eq!(&wire[4..], "привет".as_bytes());
//!
//! // An empty message is a header of zeroes and nothing else.
//! wire.send_msg("")?;
//! assert_eq!(wire[16..], [0, 0, 0, 0]);
//!
//! let mut reader = &wire[..];
//! assert_eq!(reader.recv_msg()?.as_deref(), Some("привет"));
//! assert_eq!(reader.recv_msg()?.as_deref(), Some(""));
//! // The peer closed between two frames: the conversation is over, not broken.
//! assert_eq!(reader.recv_msg()?, None);
//! # Ok::<(), netlab::wire::frame::FrameError>(())
//! ```
//!
//! Invariant: a length from the wire is compared with the maximum before a single byte
//! is allocated for it, on read and on write. The maximum (default
//! [`DEFAULT_MAX_FRAME`], 64 KiB) is a setting of each side; a frame may be exactly that
//! long, one byte more is an error.
//!
//! A close of the connection is clean only on a frame boundary. A close after part of a
//! header or part of a payload is [`FrameError::Truncated`], whatever the byte count.

use std::io::{self, Read, Write};

use bytes::{Buf, Bytes, BytesMut};

use super::codec::{Codec, PeerError};
use super::outbox::Outbox;

/// Size of the length header in bytes.
pub const HEADER_LEN: usize = 4;

/// Largest payload accepted unless configured otherwise: 64 KiB.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// Everything that can go wrong with one frame. Each variant is a different fault, so a
/// caller can tell its user exactly what happened.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("message of {len} bytes is over the maximum of {max} bytes")]
    TooLarge { len: u64, max: usize },
    #[error("connection closed in the middle of a message ({got} of {expected} bytes received)")]
    Truncated { got: usize, expected: usize },
    #[error("message is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 { offset: usize },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Checks a payload length against `max` and returns its header.
pub fn encode_header(len: usize, max: usize) -> Result<[u8; HEADER_LEN], FrameError> {
    match u32::try_from(len) {
        Ok(n) if len <= max => Ok(n.to_be_bytes()),
        _ => Err(FrameError::TooLarge {
            len: len as u64,
            max,
        }),
    }
}

/// Reads the payload length from a header and checks it against `max`.
pub fn decode_header(header: [u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header);
    match usize::try_from(len) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(FrameError::TooLarge {
            len: len.into(),
            max,
        }),
    }
}

/// Turns a payload into text, naming the first bad byte if it is not UTF-8.
pub fn payload_to_string(payload: Vec<u8>) -> Result<String, FrameError> {
    String::from_utf8(payload).map_err(|e| FrameError::InvalidUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Appends one frame holding `msg` to `buf`.
pub fn encode(msg: &str, max: usize, buf: &mut BytesMut) -> Result<(), FrameError> {
    let header = encode_header(msg.len(), max)?;
    buf.reserve(HEADER_LEN + msg.len());
    buf.extend_from_slice(&header);
    buf.extend_from_slice(msg.as_bytes());
    Ok(())
}

/// Takes one complete frame's payload off the front of `buf`, if a whole frame is there.
///
/// `Ok(None)` means "need more bytes". A header over the maximum is an error as soon as
/// its four bytes are in, before the payload arrives.
///
/// The payload is copied out, once, into a vector of its own (the text of a `String`);
/// `buf` stays a plain buffer that the next read reuses from the start.
pub fn decode(buf: &mut BytesMut, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = decode_header(*header, max)?;
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    let payload = payload.to_vec();
    buf.advance(HEADER_LEN + len);
    Ok(Some(payload))
}

/// The server's side of the frame codec, for [`Connection`](super::connection::Connection).
#[derive(Debug)]
pub struct Framed {
    max: usize,
}

impl Codec for Framed {
    type Error = FrameError;
    const PLAIN_TEXT: bool = false;

    fn with_max(max: usize) -> Self {
        Framed { max }
    }

    // Called once per message, from the connection's hot loop: inlined there, like
    // encode, rather than a call per message.
    #[inline]
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, FrameError> {
        decode(buf, self.max)?.map(payload_to_string).transpose()
    }

    fn truncated(&self, unfinished: &BytesMut) -> FrameError {
        let expected = match unfinished.first_chunk::<HEADER_LEN>() {
            None => HEADER_LEN,
            Some(header) => HEADER_LEN + u32::from_be_bytes(*header) as usize,
        };
        FrameError::Truncated {
            got: unfinished.len(),
            expected,
        }
    }

    #[inline]
    fn encode(&mut self, msg: Bytes, out: &mut Outbox) -> Result<(), FrameError> {
        let header = encode_header(msg.len(), self.max)?;
        out.put_slice(&header);
        out.put(msg);
        Ok(())
    }
}

impl PeerError for FrameError {
    fn can_tell_peer(&self) -> bool {
        match self {
            FrameError::TooLarge { .. } | FrameError::InvalidUtf8 { .. } => true,
            FrameError::Truncated { .. } | FrameError::Io(_) => false,
        }
    }
}

/// Sending half of the helpers: `stream.send_msg("text")` writes one whole frame.
///
/// Implemented for every [`Write`], so for [`std::net::TcpStream`] too. Each call issues
/// one `write_all` of header and payload together, so a frame never leaves as two
/// segments because of the helper.
pub trait SendMsg: Write {
    /// Sends `msg` as one frame, refusing it if it is over [`DEFAULT_MAX_FRAME`].
    fn send_msg(&mut self, msg: &str) -> Result<(), FrameError> {
        self.send_msg_max(msg, DEFAULT_MAX_FRAME)
    }

    /// Sends `msg` as one frame, refusing it if it is over `max` bytes.
    fn send_msg_max(&mut self, msg: &str, max: usize) -> Result<(), FrameError> {
        let mut frame = BytesMut::new();
        encode(msg, max, &mut frame)?;
        self.write_all(&frame)?;
        Ok(())
    }
}

impl<W: Write + ?Sized> SendMsg for W {}

/// Receiving half of the helpers: `stream.recv_msg()` reads exactly one whole frame.
///
/// Implemented for every [`Read`], so for [`std::net::TcpStream`] too. It reads until it
/// has the whole header and the whole payload, however the bytes arrive; a single
/// `read`/`recv` is never taken for a whole message.
pub trait RecvMsg: Read {
    /// Receives one message of at most [`DEFAULT_MAX_FRAME`] bytes; `Ok(None)` when the
    /// peer closed the connection between messages.
    fn recv_msg(&mut self) -> Result<Option<String>, FrameError> {
        self.recv_msg_max(DEFAULT_MAX_FRAME)
    }

    /// Receives one message of at most `max` bytes; `Ok(None)` when the peer closed the
    /// connection between messages.
    fn recv_msg_max(&mut self, max: usize) -> Result<Option<String>, FrameError> {
        let mut header = [0u8; HEADER_LEN];
        // Counted by hand rather than with read_exact, which reports a close before the
        // first byte and a close after the second byte as the same UnexpectedEof.
        let mut got = 0;
        while got < HEADER_LEN {
            match self.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(FrameError::Truncated {
                        got,
                        expected: HEADER_LEN,
                    });
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let len = decode_header(header, max)?;
        // The buffer grows with the bytes that actually arrive, so a peer that declares a
        // large frame and sends nothing costs little memory.
        let mut payload = Vec::with_capacity(len.min(DEFAULT_MAX_FRAME));
        self.take(len as u64).read_to_end(&mut payload)?;
        if payload.len() < len {
            return Err(FrameError::Truncated {
                got: HEADER_LEN + payload.len(),
                expected: HEADER_LEN + len,
            });
        }
        payload_to_string(payload).map(Some)
    }
}

impl<R: Read + ?Sized> RecvMsg for R {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its bytes in chunks of the given sizes, then one byte at a
    /// time, like a slow network.
    struct Chunked {
        data: Vec<u8>,
        pos: usize,
        chunks: Vec<usize>,
    }

    impl Chunked {
        fn new(data: Vec<u8>, chunks: &[usize]) -> Self {
            Chunked {
                data,
                pos: 0,
                chunks: chunks.iter().rev().copied().collect(),
            }
        }
    }

    impl Read for Chunked {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let want = self.chunks.pop().unwrap_or(1);
            let n = want.min(out.len()).min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn frame(msg: &str) -> Vec<u8> {
        let mut v = Vec::new();
        v.send_msg(msg).unwrap();
        v
    }

    #[test]
    fn header_counts_bytes_not_characters() {
        for (msg, bytes) in [("hello", 5u8), ("привет", 12), ("🦀", 4), ("", 0)] {
            assert_eq!(frame(msg)[..4], [0, 0, 0, bytes], "{msg:?}");
        }
    }

    #[test]
    fn read_one_byte_at_a_time() {
        let msg = "Привет, мир! 👋🌍";
        let mut r = Chunked::new(frame(msg), &[]);
        assert_eq!(r.recv_msg().unwrap().as_deref(), Some(msg));
        assert_eq!(r.recv_msg().unwrap(), None);
    }

    #[test]
    fn read_two_frames_in_one_read() {
        let mut data = frame("first");
        data.extend(frame("второй"));
        let mut r = Chunked::new(data.clone(), &[data.len()]);
        assert_eq!(r.recv_msg().unwrap().as_deref(), Some("first"));
        assert_eq!(r.recv_msg().unwrap().as_deref(), Some("второй"));
        assert_eq!(r.recv_msg().unwrap(), None);
    }

    #[test]
    fn read_split_header() {
        // 3 bytes of header, then the 4th with half the payload, then the rest.
        let mut r = Chunked::new(frame("split header"), &[3, 7, 100]);
        assert_eq!(r.recv_msg().unwrap().as_deref(), Some("split header"));
    }

    #[test]
    fn read_max_frame_len_accepted() {
        let msg = "я".repeat(50); // 100 bytes
        let mut r = &frame(&msg)[..];
        assert_eq!(r.recv_msg_max(100).unwrap().as_deref(), Some(&msg[..]));
    }

    #[test]
    fn read_over_max_frame_len_rejected_before_payload() {
        // Only the header is there: the error must not wait for 101 payload bytes.
        let mut r = &[0u8, 0, 0, 101][..];
        match r.recv_msg_max(100) {
            Err(FrameError::TooLarge { len: 101, max: 100 }) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn read_huge_declared_length_rejected() {
        let mut r = &[0xffu8, 0xff, 0xff, 0xff][..];
        let err = r.recv_msg().unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::TooLarge {
                    len: 4_294_967_295,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn write_max_frame_len_accepted() {
        let mut v = Vec::new();
        v.send_msg_max(&"x".repeat(100), 100).unwrap();
        assert_eq!(v.len(), 104);
    }

    #[test]
    fn write_over_max_frame_len_refused_and_nothing_written() {
        let mut v = Vec::new();
        let err = v.send_msg_max(&"ж".repeat(51), 100).unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { len: 102, max: 100 }),
            "{err:?}"
        );
        assert!(v.is_empty());
    }

    #[test]
    fn default_max_is_inclusive_on_both_sides() {
        let mut v = Vec::new();
        v.send_msg(&"a".repeat(DEFAULT_MAX_FRAME)).unwrap();
        assert!(v.send_msg(&"a".repeat(DEFAULT_MAX_FRAME + 1)).is_err());
        let mut r = &v[..];
        assert_eq!(r.recv_msg().unwrap().unwrap().len(), DEFAULT_MAX_FRAME);
    }

    #[test]
    fn clean_close_between_frames_is_none() {
        let mut r = &[][..];
        assert_eq!(r.recv_msg().unwrap(), None);
    }

    #[test]
    fn close_inside_header_is_truncated() {
        let mut r = &[0u8, 0][..];
        let err = r.recv_msg().unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::Truncated {
                    got: 2,
                    expected: 4
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn close_inside_payload_is_truncated() {
        let mut data = frame("cut short");
        data.truncate(7);
        let mut r = Chunked::new(data, &[]);
        let err = r.recv_msg().unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::Truncated {
                    got: 7,
                    expected: 13
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn invalid_utf8_is_its_own_error() {
        // "ab", then a lone continuation byte.
        let mut r = &[0u8, 0, 0, 3, b'a', b'b', 0x80][..];
        let err = r.recv_msg().unwrap_err();
        assert!(
            matches!(err, FrameError::InvalidUtf8 { offset: 2 }),
            "{err:?}"
        );
    }

    #[test]
    fn emoji_cut_in_half_is_invalid_utf8() {
        let crab = "🦀".as_bytes();
        let mut data = vec![0, 0, 0, 2];
        data.extend_from_slice(&crab[..2]);
        let err = (&data[..]).recv_msg().unwrap_err();
        assert!(matches!(err, FrameError::InvalidUtf8 { offset: 0 }));
    }

    #[test]
    fn buffer_decode_waits_for_whole_frame() {
        let whole = frame("буфер");
        let mut buf = BytesMut::new();
        for (i, b) in whole.iter().enumerate() {
            assert!(decode(&mut buf, 64).unwrap().is_none(), "after {i} bytes");
            buf.extend_from_slice(&[*b]);
        }
        let payload = decode(&mut buf, 64).unwrap().unwrap();
        assert_eq!(&payload[..], "буфер".as_bytes());
        assert!(buf.is_empty());
    }

    #[test]
    fn buffer_decode_rejects_oversized_header_without_payload() {
        let mut buf = BytesMut::from(&[0u8, 1, 0, 0][..]);
        assert!(matches!(
            decode(&mut buf, 65535),
            Err(FrameError::TooLarge { len: 65536, .. })
        ));
    }
}
