//! `netlab connect --codec raw`: any TCP service, as nc talks to it.
//!
//! Invariant: bytes pass through unchanged and unframed, both ways, as they arrive:
//! standard input to the server (each line with its newline), the server to standard
//! output. The end of input half-closes the connection; the client ends when the server
//! closes, and that end is normal only if the input had ended first.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use anyhow::Context;

use super::link::Link;

pub fn run(stream: Link, server: SocketAddr) -> anyhow::Result<()> {
    let mut to_server = stream.try_clone()?;
    let input_ended = Arc::new(AtomicBool::new(false));
    let sender = thread::spawn({
        let input_ended = Arc::clone(&input_ended);
        move || {
            let sent = io::copy(&mut io::stdin().lock(), &mut to_server);
            // Set before the half-close, since a server may answer that at once by
            // closing: its close must then be seen as the normal end.
            input_ended.store(sent.is_ok(), Ordering::SeqCst);
            let _ = to_server.shutdown(Shutdown::Write);
            sent
        }
    });
    let mut from_server = stream;
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from_server.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("connection to {server} failed")),
        };
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
    if !input_ended.load(Ordering::SeqCst) && !sender.is_finished() {
        anyhow::bail!("{server} closed the connection before the end of input");
    }
    match sender.join() {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e).context("could not send standard input"),
        Err(_) => anyhow::bail!("the input thread failed"),
    }
}
