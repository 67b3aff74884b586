//! Task 10: many messages back and forth, one after another, pipelined and on several
//! connections at once.

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use super::{Ctx, Outcome, Step, difference, echo, ended, pattern};
use crate::tools::check::probe::Probe;
use crate::wire::CodecKind;

const COUNT: u64 = 100;

/// 10.1: 100 messages, each waiting for its reply.
pub fn back_and_forth(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.open()?;
    for i in 1..=COUNT {
        echo(
            &mut probe,
            ctx,
            &pattern(20 + i as usize, i),
            &format!("message {i} of {COUNT}"),
        )?;
    }
    Ok(Outcome::ok(
        "100 replies, each exact",
        "100 replies, each exact",
    ))
}

/// 10.2: 100 messages written without waiting, then 100 replies read in order.
pub fn pipelined(ctx: &mut Ctx) -> Step<Outcome> {
    let expected = "100 pipelined messages answered in order";
    let messages: Vec<Vec<u8>> = (1..=COUNT)
        .map(|i| pattern(20 + i as usize, 1000 + i))
        .collect();
    let wire: Vec<u8> = messages
        .iter()
        .flat_map(|m| Probe::encode(ctx.codec(), m))
        .collect();
    let mut probe = ctx.open()?;
    let codec = ctx.codec();
    let deadline = ctx.deadline();
    probe
        .exchange(wire, 64 * 1024, Duration::ZERO, |probe| {
            if codec == CodecKind::Raw {
                let all = messages.concat();
                let got = probe.recv_exact(all.len(), deadline)?;
                return Ok((got != all).then(|| difference(&all, &got)));
            }
            for (i, message) in messages.iter().enumerate() {
                let got = probe.recv(deadline)?;
                if &got != message {
                    return Ok(Some(format!(
                        "reply {}: {}",
                        i + 1,
                        difference(message, &got)
                    )));
                }
            }
            Ok(None)
        })
        .map_err(ended(expected))?
        .map_or(Ok(()), |wrong| Err(Outcome::failed(expected, wrong)))?;
    Ok(Outcome::ok(expected, "100 replies, in order"))
}

/// How long 10.3 keeps its connections busy.
const LOAD: Duration = Duration::from_secs(3);
const CONNECTIONS: u64 = 4;

/// 10.3: four connections, each sending and checking as fast as the server answers, for
/// three seconds. All four stay open until all four are done: a server that serves one
/// at a time must not get to the next only because the first left.
pub fn under_load(ctx: &mut Ctx) -> Step<Outcome> {
    let expected = "4 connections for 3 s, every reply exact";
    let ctx: &Ctx = ctx;
    let until = Instant::now() + LOAD;
    let together = Barrier::new(CONNECTIONS as usize);
    let results: Vec<Result<u64, String>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..CONNECTIONS)
            .map(|conn| {
                let together = &together;
                scope.spawn(move || {
                    let (probe, result) = load(ctx, conn, until);
                    together.wait();
                    drop(probe);
                    result
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("the checker's thread failed".into()))
            })
            .collect()
    });
    let answered: u64 = results.iter().filter_map(|r| r.as_ref().ok()).sum();
    let failures: Vec<String> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("connection {}: {e}", i + 1))
        })
        .collect();
    if failures.is_empty() {
        Ok(Outcome::ok(
            expected,
            format!("{answered} replies, all exact"),
        ))
    } else {
        Err(Outcome::failed(
            expected,
            format!("{answered} exact replies; {}", failures.join("; ")),
        ))
    }
}

/// One connection of 10.3, still open, and the number of exact replies or what went
/// wrong first.
fn load(ctx: &Ctx, conn: u64, until: Instant) -> (Option<Probe>, Result<u64, String>) {
    let mut probe = match ctx.open() {
        Ok(probe) => probe,
        Err(o) => return (None, Err(o.actual)),
    };
    let mut answered = 0;
    while Instant::now() < until {
        let message = pattern(32, (conn << 32) + answered);
        if let Err(o) = echo(
            &mut probe,
            ctx,
            &message,
            &format!("message {}", answered + 1),
        ) {
            return (
                Some(probe),
                Err(format!("after {answered} replies: {}", o.actual)),
            );
        }
        answered += 1;
    }
    (Some(probe), Ok(answered))
}
