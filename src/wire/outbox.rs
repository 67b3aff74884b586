//! Output a codec has encoded and the connection has not yet written.
//!
//! Invariant: bytes leave in the order they were put, whatever mix of copied and moved
//! pieces they are, and however little each write takes. Small pieces are gathered into
//! one buffer; a large one is queued as it is, moved rather than copied, and the lot
//! leaves in one vectored write.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;

/// Pieces shorter than this are copied into the gathering buffer; longer ones are
/// queued as they are, since copying them would cost more than a separate iovec.
const COPY_BELOW: usize = 1024;
/// Most chunks handed to one vectored write.
const MAX_IOVECS: usize = 32;

/// Output waiting to be written, in order: pieces ready to go, then the gathering
/// buffer. A codec's `encode` adds to it; the connection writes it out.
#[derive(Debug, Default)]
pub struct Outbox {
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    pending: usize,
}

impl Outbox {
    /// Copies `bytes` to the end of the output.
    #[inline]
    pub fn put_slice(&mut self, bytes: &[u8]) {
        self.pending += bytes.len();
        self.tail.extend_from_slice(bytes);
    }

    /// Adds `bytes` to the end of the output: copied if short, moved if long.
    #[inline]
    pub fn put(&mut self, bytes: Bytes) {
        if bytes.len() < COPY_BELOW {
            return self.put_slice(&bytes);
        }
        self.pending += bytes.len();
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
        self.chunks.push_back(bytes);
    }

    /// Adds `bytes[range]`: copied if short; if long, shared with `bytes`, not copied.
    /// (Slicing a `Bytes` made from a vector allocates, so a short part is never sliced.)
    #[inline]
    pub fn put_part(&mut self, bytes: &Bytes, range: std::ops::Range<usize>) {
        if range.len() < COPY_BELOW {
            self.put_slice(&bytes[range]);
        } else {
            self.put(bytes.slice(range));
        }
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.pending
    }

    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// One vectored write of the queued chunks, then the gathering buffer. The slices
    /// live on the stack for this call only.
    pub(super) fn poll_write_to<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let chunks = self
            .chunks
            .iter()
            .map(|chunk| &chunk[..])
            .chain(std::iter::once(&self.tail[..]))
            .filter(|chunk| !chunk.is_empty());
        let mut count = 0;
        for (slot, chunk) in slices.iter_mut().zip(chunks) {
            *slot = IoSlice::new(chunk);
            count += 1;
        }
        Pin::new(stream).poll_write_vectored(cx, &slices[..count])
    }

    /// Drops `n` written bytes from the front.
    pub(super) fn consume(&mut self, mut n: usize) {
        self.pending -= n;
        while let Some(front) = self.chunks.front_mut() {
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
        self.tail.advance(n);
    }

    /// Everything waiting, as one vector: for tests.
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut all: Vec<u8> = self.chunks.iter().flat_map(|c| c.to_vec()).collect();
        all.extend_from_slice(&self.tail);
        all
    }
}
