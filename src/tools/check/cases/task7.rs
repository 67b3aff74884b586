//! Task 7: an identification server knows its clients by IP address.
//!
//! The two client addresses are fresh loopback addresses each run (127.A.B.2 and
//! 127.A.B.3), so that a server that remembers past runs still meets strangers.

use super::{Ctx, Outcome, Step, ended, random_u64};
use crate::tools::check::probe::describe;

/// 7.1: a client from an unknown address is greeted, answers with a name, and the
/// server takes it.
pub fn asks_name(ctx: &mut Ctx) -> Step<Outcome> {
    let name = format!("Tester{:04}", random_u64() % 10_000);
    let from = ctx.from[0];
    let expected = format!("from {from}, a question, then an answer to the name {name}");
    if !ctx.greets {
        return Err(Outcome::failed(
            expected,
            "no greeting (see 0.2): nothing asks the name",
        ));
    }
    let (mut probe, greeting) = ctx.open_from(Some(from))?;
    if greeting.contains(&name) {
        return Err(Outcome::failed(
            expected,
            format!("greeted a stranger as {name}: {greeting}"),
        ));
    }
    probe.send(name.as_bytes()).map_err(ended(&expected))?;
    let answer = probe
        .recv(ctx.deadline())
        .map_err(|e| Outcome::failed(&expected, format!("after the name: {e}")))?;
    ctx.ident_name = Some(name);
    Ok(Outcome::ok(
        expected,
        format!(
            "asked {}; answered {}",
            describe(greeting.as_bytes()),
            describe(&answer)
        ),
    ))
}

/// The name given at 7.1, giving one now if 7.1 was not selected.
fn named(ctx: &mut Ctx) -> Step<String> {
    if ctx.ident_name.is_none() {
        asks_name(ctx)
            .map_err(|o| Outcome::skipped(format!("no client was named: {}", o.actual)))?;
    }
    Ok(ctx.ident_name.clone().expect("named just now"))
}

/// 7.2: the named client's address is greeted by its name.
pub fn greets_by_name(ctx: &mut Ctx) -> Step<Outcome> {
    let name = named(ctx)?;
    let from = ctx.from[0];
    let expected = format!("{from} greeted as {name} on its return");
    let (_, greeting) = ctx.open_from(Some(from))?;
    if greeting.contains(&name) {
        Ok(Outcome::ok(expected, describe(greeting.as_bytes())))
    } else {
        Err(Outcome::failed(
            expected,
            format!("greeted {}", describe(greeting.as_bytes())),
        ))
    }
}

/// 7.3: another address is a stranger, not the first client.
pub fn tells_apart(ctx: &mut Ctx) -> Step<Outcome> {
    let name = named(ctx)?;
    let other = ctx.from[1];
    let expected = format!("{other} not greeted as {name}, the name of {}", ctx.from[0]);
    let (_, greeting) = ctx.open_from(Some(other))?;
    if greeting.contains(&name) {
        Err(Outcome::failed(
            expected,
            format!("greeted {}", describe(greeting.as_bytes())),
        ))
    } else {
        Ok(Outcome::ok(expected, describe(greeting.as_bytes())))
    }
}
