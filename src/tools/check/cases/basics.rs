//! Task 0, before any task: the server can be reached and opens the conversation as its
//! codec says.

use std::time::{Duration, Instant};

use super::{Ctx, Outcome, Step};
use crate::tools::check::probe::{Ended, describe};
use crate::wire::CodecKind;

/// 0.1: a connection within the timeout.
pub fn accepts(ctx: &mut Ctx) -> Step<Outcome> {
    let started = Instant::now();
    ctx.connect(None)?;
    Ok(Outcome::ok(
        "a connection within the timeout",
        format!("connected in {} ms", started.elapsed().as_millis()),
    ))
}

/// 0.2: framed and lines: a greeting within the timeout; raw: nothing unasked.
pub fn greets(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.connect(None)?;
    if ctx.codec() == CodecKind::Raw {
        let expected = "nothing sent before the client speaks";
        let wait = ctx.settings.timeout.min(Duration::from_millis(500));
        return match probe.recv(Instant::now() + wait) {
            Err(Ended::Silent { .. }) => Ok(Outcome::ok(
                expected,
                format!("nothing in {} ms", wait.as_millis()),
            )),
            Ok(bytes) => Err(Outcome::failed(
                expected,
                format!(
                    "sent {} unasked: a raw echo would hand it to the client as an echo",
                    describe(&bytes)
                ),
            )),
            Err(e) => Err(Outcome::failed(expected, e.to_string())),
        };
    }
    let expected = "a greeting within the timeout";
    match ctx.greeting(&mut probe) {
        Ok(greeting) => Ok(Outcome::ok(expected, describe(greeting.as_bytes()))),
        Err(e) => {
            // Later cases must not wait a timeout each for a greeting that never comes.
            ctx.greets = false;
            Err(Outcome::failed(expected, e.to_string()))
        }
    }
}
