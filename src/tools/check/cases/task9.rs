//! Task 9: messages of any size and content, however the network cuts them.
//!
//! Loopback delivers 64 KiB in one piece; a real network never does. So every message
//! over a few bytes is written in pieces with pauses, and a server that takes one
//! `recv()` for a whole message fails here as it would between two machines.

use std::time::Duration;

use super::{Ctx, Outcome, Step, difference, ended, expect_echo_by, pattern};
use crate::tools::check::probe::{Ended, Probe, describe};
use crate::tools::check::report::Verdict;
use crate::wire::CodecKind;

/// A pause long enough that the pieces around it reach the server's recv() apart.
const PAUSE: Duration = Duration::from_millis(100);

/// Writes `payload` as a message in pieces while the echo is read, and checks it.
fn echo_in_pieces(
    ctx: &Ctx,
    probe: &mut Probe,
    payload: &[u8],
    piece: usize,
    pause: Duration,
    what: &str,
) -> Step<()> {
    let wire = Probe::encode(ctx.codec(), payload);
    // The timeout counts from the last piece: the pauses are the checker's own.
    let pauses = wire.len().div_ceil(piece.max(1)).saturating_sub(1) as u32;
    let deadline = ctx.deadline() + pause * pauses;
    probe
        .exchange(wire, piece, pause, |probe| {
            Ok(expect_echo_by(probe, ctx, payload, what, deadline))
        })
        .map_err(ended(format!("{what} echoed exactly")))?
}

/// 9.1: the largest message: framed and lines the maximum, raw 1 MB.
pub fn largest(ctx: &mut Ctx) -> Step<Outcome> {
    let size = ctx.largest();
    let what = format!("a message of {size} bytes");
    let mut probe = ctx.open()?;
    // At most 8 pieces, however large the maximum, with pauses long enough that a busy
    // machine does not join them again before the server reads.
    let piece = size.div_ceil(8).max(16 * 1024);
    echo_in_pieces(ctx, &mut probe, &pattern(size, 91), piece, PAUSE / 2, &what)?;
    Ok(Outcome::ok(
        format!("{what} echoed exactly"),
        "echoed exactly",
    ))
}

/// 9.2: a message, header included, one byte at a time.
pub fn byte_at_a_time(ctx: &mut Ctx) -> Step<Outcome> {
    let what = "a message sent one byte at a time";
    let mut probe = ctx.open()?;
    echo_in_pieces(
        ctx,
        &mut probe,
        &pattern(24, 92),
        1,
        Duration::from_millis(10),
        what,
    )?;
    Ok(Outcome::ok(
        format!("{what} echoed exactly"),
        "echoed exactly",
    ))
}

/// 9.3: 32 KiB (or the maximum, if smaller) in 8 KiB chunks with pauses.
pub fn chunks(ctx: &mut Ctx) -> Step<Outcome> {
    let size = ctx.largest().min(32 * 1024);
    let what = format!("{size} bytes in 8 KiB chunks");
    let mut probe = ctx.open()?;
    echo_in_pieces(ctx, &mut probe, &pattern(size, 93), 8 * 1024, PAUSE, &what)?;
    Ok(Outcome::ok(
        format!("{what} echoed exactly"),
        "echoed exactly",
    ))
}

/// 9.4: two messages in one write, two replies in order.
pub fn two_in_one(ctx: &mut Ctx) -> Step<Outcome> {
    let expected = "two messages sent in one segment, two replies in order";
    let mut probe = ctx.open()?;
    let (a, b) = (pattern(20, 941), pattern(20, 942));
    let mut wire = Probe::encode(ctx.codec(), &a);
    wire.extend(Probe::encode(ctx.codec(), &b));
    probe.send_wire(&wire).map_err(ended(expected))?;
    for (which, message) in [("first", &a), ("second", &b)] {
        let got = probe
            .recv(ctx.deadline())
            .map_err(|e| Outcome::failed(expected, format!("the {which} reply: {e}")))?;
        if &got != message {
            return Err(Outcome::failed(
                expected,
                format!("the {which} reply: {}", difference(message, &got)),
            ));
        }
    }
    Ok(Outcome::ok(expected, "two replies, in order"))
}

/// Text of 2-, 3- and 4-byte characters: Cyrillic, a dash, emoji.
const MULTIBYTE: &str = "Привет, мир! Ёжик в тумане — 🦔🌫️ ok";

/// 9.5: multi-byte text cut inside characters (and framed, inside the header), whose
/// echo must come back whole, under a header that counts bytes.
pub fn multibyte(ctx: &mut Ctx) -> Step<Outcome> {
    let expected = "text of Cyrillic and emoji, cut inside characters, echoed exactly";
    let payload = MULTIBYTE.as_bytes();
    let wire = Probe::encode(ctx.codec(), payload);
    let header = if ctx.codec() == CodecKind::Framed {
        4
    } else {
        0
    };
    // Inside the header; inside "П" (2 bytes); inside "🦔" (4 bytes).
    let hedgehog = MULTIBYTE.find('🦔').expect("in the text");
    let cuts = [header.min(2), header + 1, header + hedgehog + 2];
    let mut probe = ctx.open()?;
    let mut start = 0;
    for cut in cuts.into_iter().filter(|&c| c > 0).chain([wire.len()]) {
        if let Err(e) = probe.send_wire(&wire[start..cut]) {
            // What the server said before it stopped reading explains more than the
            // broken pipe.
            let said = probe.recv(ctx.deadline()).map_or(String::new(), |reply| {
                format!(
                    "; it had answered {} before the message was complete",
                    describe(&reply)
                )
            });
            return Err(Outcome::failed(expected, format!("{e}{said}")));
        }
        start = cut;
        if start < wire.len() {
            std::thread::sleep(PAUSE);
        }
    }
    let got = match ctx.codec() {
        CodecKind::Raw => probe.recv_exact(payload.len(), ctx.deadline()),
        _ => probe.recv(ctx.deadline()),
    };
    match got {
        Ok(got) if got == payload => Ok(Outcome::ok(expected, "echoed exactly")),
        Ok(got) => {
            let chars = MULTIBYTE.chars().count();
            if ctx.codec() == CodecKind::Framed && got.len() == chars && payload.starts_with(&got) {
                Err(Outcome::failed(
                    expected,
                    format!(
                        "a header of {chars}: it counts characters, not the {} bytes",
                        payload.len()
                    ),
                ))
            } else {
                Err(Outcome::failed(expected, difference(payload, &got)))
            }
        }
        Err(e) => Err(Outcome::failed(expected, e.to_string())),
    }
}

/// 9.6: framed and lines: the empty message; raw: every byte value 0x00-0xFF.
pub fn edge_values(ctx: &mut Ctx) -> Step<Outcome> {
    let (payload, what): (Vec<u8>, _) = match ctx.codec() {
        CodecKind::Raw => ((0..=255u8).collect(), "every byte value 0x00-0xFF"),
        _ => (Vec::new(), "the empty message"),
    };
    let mut probe = ctx.open()?;
    super::echo(&mut probe, ctx, &payload, what)?;
    Ok(Outcome::ok(
        format!("{what} echoed exactly"),
        "echoed exactly",
    ))
}

/// What 9.7 declares: nearly 4 GiB.
const HUGE: u32 = 0xFFFF_FFF0;

/// 9.7: a header declaring more than any maximum, followed by a few bytes. The server
/// must refuse it (an error message or a close), never answer those bytes as a message.
pub fn over_maximum(ctx: &mut Ctx) -> Step<Outcome> {
    let expected = format!("a header declaring {HUGE} bytes refused: an error or a close");
    let mut probe = ctx.open()?;
    let tail = pattern(16, 97);
    let mut wire = HUGE.to_be_bytes().to_vec();
    wire.extend_from_slice(&tail);
    probe.send_wire(&wire).map_err(ended(&expected))?;
    match probe.recv(ctx.deadline()) {
        Ok(reply) if !reply.is_empty() && tail.starts_with(&reply) => Err(Outcome::failed(
            expected,
            format!(
                "answered {} as if the message were complete: no maximum, one recv() per message",
                describe(&reply)
            ),
        )),
        Ok(reply) => Ok(Outcome::ok(
            expected,
            format!("refused: {}", describe(&reply)),
        )),
        Err(Ended::Closed { .. }) => Ok(Outcome::ok(expected, "closed the connection")),
        Err(Ended::Broken(why)) => Ok(Outcome::ok(
            expected,
            format!("closed the connection ({why})"),
        )),
        Err(Ended::Silent { .. }) => Err(Outcome::failed(
            expected,
            format!("neither an error nor a close: waiting for {HUGE} bytes (no maximum)"),
        )),
        Err(e) => Err(Outcome::failed(expected, e.to_string())),
    }
}

/// 9.8: a message that is not UTF-8 gets an error, not an echo of the bad bytes.
pub fn invalid_utf8(ctx: &mut Ctx) -> Step<Outcome> {
    let expected = "invalid UTF-8 answered with an error";
    // 0xC3 begins a two-byte character that "(" cannot continue. (0xFF would be a telnet
    // command to a line server.)
    let bad = b"netlab \xc3( check".to_vec();
    let mut probe = ctx.open()?;
    probe.send(&bad).map_err(ended(expected))?;
    match probe.recv(ctx.deadline()) {
        Ok(reply) if reply == bad => Err(Outcome::failed(
            expected,
            "echoed the invalid bytes back as if they were text",
        )),
        Ok(reply) => Ok(Outcome::ok(
            expected,
            format!("answered {}", describe(&reply)),
        )),
        Err(Ended::Closed { .. } | Ended::Broken(_)) => Ok(Outcome::new(
            Verdict::NonStrict,
            expected,
            "closed the connection without saying why",
        )),
        Err(e) => Err(Outcome::failed(expected, e.to_string())),
    }
}
