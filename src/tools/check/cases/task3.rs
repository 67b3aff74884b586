//! Task 3: a server that keeps listening, whatever its clients do and however they leave.

use std::thread;
use std::time::Duration;

use super::{Ctx, Outcome, Step, difference, echo, ended, expect_echo, pattern};
use crate::tools::check::probe::{Ended, Probe};
use crate::tools::check::report::Verdict;
use crate::wire::CodecKind;

/// 3.1: connect, echo, close, three times.
pub fn cycles(ctx: &mut Ctx) -> Step<Outcome> {
    for round in 1..=3 {
        let mut probe = ctx.open()?;
        echo(
            &mut probe,
            ctx,
            &pattern(40, round),
            &format!("message of cycle {round}"),
        )?;
    }
    Ok(Outcome::ok(
        "three cycles, each echoed exactly",
        "three cycles, each echoed exactly",
    ))
}

/// A client that has been served once, and stays connected.
fn first_client(ctx: &Ctx) -> Step<Probe> {
    let mut first = ctx.open()?;
    echo(
        &mut first,
        ctx,
        &pattern(30, 1),
        "the first client's message",
    )?;
    Ok(first)
}

/// 3.2: a second client is answered while the first stays connected. The lab's task 3
/// allows one client at a time, so waiting is NON-STRICT rather than FAILED.
pub fn second_client(ctx: &mut Ctx) -> Step<Outcome> {
    let expected = "the second client answered while the first stays connected";
    // Named, not `_`: it stays connected to the end of the case.
    let _first = first_client(ctx)?;
    let second = ctx.open().and_then(|mut second| {
        echo(
            &mut second,
            ctx,
            &pattern(30, 2),
            "the second client's message",
        )
    });
    match second {
        Ok(()) => Ok(Outcome::ok(expected, "both served at once")),
        Err(waited) => Ok(Outcome::new(
            Verdict::NonStrict,
            expected,
            format!(
                "one client at a time: the second waited ({})",
                waited.actual
            ),
        )),
    }
}

/// 3.3: a client that connects while another is served gets its turn when that one
/// leaves: it is neither reset nor forgotten.
pub fn waiting_client(ctx: &mut Ctx) -> Step<Outcome> {
    let expected = "the waiting client served once the first one left";
    let first = first_client(ctx)?;
    let mut waiting = ctx.connect(None)?;
    let message = pattern(30, 2);
    waiting
        .send(&message)
        .map_err(ended("the waiting client's message accepted"))?;
    thread::sleep(Duration::from_millis(200));
    drop(first);
    ctx.greeting(&mut waiting).map_err(|e| {
        Outcome::failed(expected, format!("the waiting client got no greeting: {e}"))
    })?;
    expect_echo(&mut waiting, ctx, &message, "the waiting client's message")?;
    Ok(Outcome::ok(expected, "served after the first left"))
}

/// 3.4: the client sends three messages and half-closes; all three come back, then EOF.
pub fn half_close(ctx: &mut Ctx) -> Step<Outcome> {
    let expected = "three messages echoed after the client's half-close, then EOF";
    let mut probe = ctx.open()?;
    let messages: Vec<Vec<u8>> = (1..=3).map(|i| pattern(25, i)).collect();
    for message in &messages {
        probe.send(message).map_err(ended(expected))?;
    }
    probe.half_close().map_err(ended(expected))?;
    let deadline = ctx.deadline();
    if ctx.codec() == CodecKind::Raw {
        let all = messages.concat();
        let got = probe
            .recv_close(deadline)
            .map_err(|e| no_eof(expected, e, &probe))?;
        return if got == all {
            Ok(Outcome::ok(expected, "all bytes echoed, then EOF"))
        } else {
            Err(Outcome::failed(expected, difference(&all, &got)))
        };
    }
    for (i, message) in messages.iter().enumerate() {
        let got = probe
            .recv(deadline)
            .map_err(|e| Outcome::failed(expected, format!("{i} of 3 echoes, then: {e}")))?;
        if &got != message {
            return Err(Outcome::failed(expected, difference(message, &got)));
        }
    }
    match probe.recv_close(deadline) {
        Ok(rest) if rest.is_empty() => Ok(Outcome::ok(expected, "three echoes, then EOF")),
        Ok(rest) => Err(Outcome::failed(
            expected,
            format!("three echoes, then {} more bytes before EOF", rest.len()),
        )),
        Err(e) => Err(no_eof(expected, e, &probe)),
    }
}

fn no_eof(expected: &str, e: Ended, probe: &Probe) -> Outcome {
    match e {
        Ended::Silent { .. } => Outcome::failed(
            expected,
            format!(
                "no EOF: the server kept the connection open after the client's half-close \
                 ({} bytes received)",
                probe.leftover().len()
            ),
        ),
        e => Outcome::failed(expected, e.to_string()),
    }
}

/// 3.5: a client resets its connection (RST) after a message; the checker then sees
/// whether the server is still alive.
pub fn reset(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.open()?;
    echo(
        &mut probe,
        ctx,
        &pattern(30, 5),
        "a message before the reset",
    )?;
    // Another message the server is reading or answering when the reset arrives.
    let _ = probe.send(&pattern(30, 6));
    probe.reset();
    Ok(alive_after("a reset"))
}

/// 3.6: a client leaves in the middle of a message (framed: a header and part of the
/// payload; lines: a line without its end; raw: with the echo of 64 KiB unread).
pub fn close_midway(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.open()?;
    let what = match ctx.codec() {
        CodecKind::Framed => {
            let mut wire = 100u32.to_be_bytes().to_vec();
            wire.extend_from_slice(&pattern(10, 7));
            let _ = probe.send_wire(&wire);
            "a close after 10 of 100 bytes"
        }
        CodecKind::Lines => {
            let _ = probe.send_wire(&pattern(10, 7));
            "a close in the middle of a line"
        }
        CodecKind::Raw => {
            // Closing with the echo unread makes the kernel reset the connection under
            // the server. 64 KiB fits the socket buffers of both sides.
            let _ = probe.send_wire(&pattern(64 * 1024, 7));
            thread::sleep(Duration::from_millis(200));
            "a close with the echo of 64 KiB unread"
        }
    };
    drop(probe);
    Ok(alive_after(what))
}

/// The verdict of a case whose only question is whether the server survived: the
/// runner's liveness check turns it into FAILED if not.
fn alive_after(what: &str) -> Outcome {
    let expected = format!("the server alive after {what}");
    Outcome::ok(
        expected.clone(),
        expected.replacen("the server alive", "alive", 1),
    )
}
