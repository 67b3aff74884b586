//! Task 6: a busy port is no reason to fail, and a restart is no reason to move.
//!
//! Both cases start the server themselves, so they need --exec. Each leaves it running
//! on its usual port for the cases after it.

use std::net::TcpListener;
use std::time::Duration;

use super::{Ctx, Outcome, Step};
use crate::tools::check::settings::Mode;

fn managed(ctx: &mut Ctx) -> &mut crate::tools::check::target::Managed {
    ctx.managed
        .as_mut()
        .expect("task 6 applies only with --exec")
}

/// Starts the server again on its usual port after a case, or says why it cannot.
fn back_to_normal(ctx: &mut Ctx) -> Step<()> {
    let server = managed(ctx);
    let restarted = server.restart();
    ctx.server = managed(ctx).addr();
    restarted.map(drop).map_err(|e| {
        Outcome::failed(
            "the server started again",
            format!("could not start it again: {e}"),
        )
    })
}

/// 6.1: with its port held by the checker, the server listens on another port and says
/// which (the checker finds it in what the server printed).
pub fn moves_when_busy(ctx: &mut Ctx) -> Step<Outcome> {
    let usual = managed(ctx).port;
    let ip = managed(ctx).launch.ip;
    let expected = format!("with port {usual} taken, another port, printed");
    managed(ctx).stop();
    let held = TcpListener::bind((ip, usual));
    let moved = match &held {
        Ok(_) => managed(ctx).start_elsewhere(usual),
        Err(e) => Err(format!("the checker could not hold port {usual}: {e}")),
    };
    drop(held);
    back_to_normal(ctx)?;
    match moved {
        Ok(port) => Ok(Outcome::ok(
            expected,
            format!("moved to port {port} and said so"),
        )),
        Err(e) => Err(Outcome::failed(expected, e)),
    }
}

/// 6.2: the server is stopped while a client is connected, which leaves its side of
/// that connection in TIME_WAIT for a minute; started again at once, it must listen on
/// the same port. Without SO_REUSEADDR its bind fails, and it dies or drifts.
pub fn rebinds_at_once(ctx: &mut Ctx) -> Step<Outcome> {
    let usual = managed(ctx).port;
    let expected = format!("port {usual} again, right after a stop with a client connected");
    // A conversation under way, so that the server has surely accepted the connection:
    // one still in the listen queue would be reset, leaving no TIME_WAIT.
    let (mut probe, _) = ctx.open_from(None)?;
    if ctx.settings.mode == Mode::Echo {
        super::echo(
            &mut probe,
            ctx,
            &super::pattern(20, 62),
            "a message before the stop",
        )?;
    }
    managed(ctx).stop();
    // The server closed first; the client's close completes the server's TIME_WAIT.
    let _ = probe.recv_close(std::time::Instant::now() + Duration::from_secs(1));
    drop(probe);
    let restarted = managed(ctx).restart();
    ctx.server = managed(ctx).addr();
    match restarted {
        Ok(port) if port == usual => Ok(Outcome::ok(expected, format!("port {port} again"))),
        Ok(port) => Err(Outcome::failed(
            expected,
            format!(
                "moved to port {port}: {usual} was still held by the last connection \
                 (TIME_WAIT); a server needs SO_REUSEADDR"
            ),
        )),
        Err(e) => {
            let outcome = Outcome::failed(expected, format!("could not start again: {e}"));
            // Leave a server for the cases after this one, wherever it can listen.
            back_to_normal(ctx).map_err(|_| outcome.clone())?;
            Err(outcome)
        }
    }
}
