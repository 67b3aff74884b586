//! `netlab check`: numbered cases against any server of this lab, one verdict each, as
//! Autobahn|Testsuite and h2spec do for WebSocket and HTTP/2.
//!
//! - [`cases`]: the cases, a file per lab task; [`probe`]: the checker's connection;
//! - [`target`]: a server the checker starts itself (`--exec`), for a class's servers;
//! - [`report`]: verdicts as a table, JSON lines, JUnit XML and a summary;
//! - [`settings`]: what a run checks, the same for every server.
//!
//! Invariant: a run against one server is bounded in time (a timeout per step, a budget
//! per server) and survives anything the server does, dying included: after a case that
//! could break the server, a fresh connection checks it is alive; a death is that case's
//! FAILED, and the cases after it are SKIPPED, or with --exec run on a restarted server.

pub mod cases;
pub mod probe;
pub mod report;
pub mod settings;
pub mod target;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cases::{Ctx, echo};
use report::{Named, Outcome, Report, Verdict};
use target::{Exec, Launch, Managed};

pub use settings::{Mode, Settings};

/// How the checker was told to find its servers.
pub enum Servers {
    /// One running server.
    At(SocketAddr),
    /// Servers the checker starts: the command for each target, or once alone.
    Exec { exec: Exec, targets: Vec<PathBuf> },
}

/// How the run ended, as the exit status says it.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdicts {
    /// No case failed: exit 0.
    Passed,
    /// A case failed, or a target did not start: exit 1.
    Failed,
    /// The server could not be reached at all: exit 2.
    Unreachable,
}

/// Where the results go.
pub struct Output<'a> {
    pub out: &'a mut dyn Write,
    pub json: bool,
    pub junit: Option<PathBuf>,
}

/// Runs the selected cases against every server and writes the results.
pub fn run(settings: &Settings, servers: Servers, output: Output<'_>) -> anyhow::Result<Verdicts> {
    let Output { out, json, junit } = output;
    let mut reports: Vec<(String, Result<Report, String>)> = Vec::new();
    let mut unreachable = false;
    match servers {
        Servers::At(addr) => {
            let report = check_one(settings, addr, None, addr.to_string(), out, json)?;
            unreachable = report
                .results
                .first()
                .is_some_and(|(c, o)| c.id == "0.1" && o.verdict == Verdict::Failed);
            reports.push((addr.to_string(), Ok(report)));
        }
        Servers::Exec { exec, targets } => {
            let alone = targets.is_empty();
            let several = targets.len() > 1;
            let targets: Vec<Option<PathBuf>> = if alone {
                vec![None]
            } else {
                targets.into_iter().map(Some).collect()
            };
            for target in targets {
                let label = match &target {
                    Some(t) => t.display().to_string(),
                    None => exec.command.clone(),
                };
                let started = Launch::new(&exec, target.as_deref()).and_then(Managed::start);
                let result = match started {
                    Ok(managed) => {
                        let addr = managed.addr();
                        // The server stops when `managed`, moved into the run, is dropped.
                        Ok(check_one(
                            settings,
                            addr,
                            Some(managed),
                            label.clone(),
                            out,
                            json,
                        )?)
                    }
                    Err(why) => {
                        if json {
                            let line = serde_json::json!({"target": label, "started": false, "error": why});
                            writeln!(out, "{line}")?;
                        } else {
                            writeln!(out, "netlab check {label}: did not start: {why}\n")?;
                        }
                        unreachable |= alone;
                        Err(why)
                    }
                };
                reports.push((label, result));
            }
            if several && !json {
                write!(out, "{}", report::summary(&reports))?;
            }
        }
    }
    if let Some(path) = junit {
        std::fs::write(&path, report::junit(&reports))
            .map_err(|e| anyhow::anyhow!("could not write {}: {e}", path.display()))?;
    }
    let failed = reports
        .iter()
        .any(|(_, r)| r.as_ref().map_or(true, Report::failed));
    Ok(if unreachable {
        Verdicts::Unreachable
    } else if failed {
        Verdicts::Failed
    } else {
        Verdicts::Passed
    })
}

/// The cases against one server, each row written as soon as it is known.
fn check_one(
    settings: &Settings,
    addr: SocketAddr,
    managed: Option<Managed>,
    label: String,
    out: &mut dyn Write,
    json: bool,
) -> anyhow::Result<Report> {
    let target = managed.is_some().then(|| label.clone());
    let heading = match &target {
        Some(t) => format!("{t} at {addr}"),
        None => label.clone(),
    };
    if !json {
        write!(
            out,
            "{}",
            report::heading(&heading, settings.codec.name(), settings.mode.name())
        )?;
    }
    let mut report = Report {
        server: addr.to_string(),
        codec: settings.codec.name(),
        mode: settings.mode.name(),
        results: Vec::new(),
        died_at: None,
        lost: "died",
        strict: settings.strict,
    };
    let mut rows = |case: &Named, outcome: &Outcome| -> std::io::Result<()> {
        if !json {
            write!(out, "{}", report::row(case, outcome))?;
            out.flush()?;
        }
        Ok(())
    };
    let mut ctx = Ctx::new(settings.clone(), addr, managed);
    let started = Instant::now();
    // Why the remaining cases cannot run, once they cannot.
    let mut gone: Option<String> = None;
    for case in cases::all() {
        if !cases::selected(&settings.cases, case.named.id) {
            continue;
        }
        let outcome = if let Some(why) = &gone {
            Outcome::skipped(why.clone())
        } else if started.elapsed() > settings.budget {
            Outcome::skipped(format!(
                "over this server's budget of {}",
                humantime::format_duration(settings.budget)
            ))
        } else if let Err(why) = (case.applies)(&ctx) {
            Outcome::skipped(why)
        } else {
            let mut outcome = (case.run)(&mut ctx).unwrap_or_else(|o| o);
            let check = case.may_break || ctx.managed.is_some();
            if check
                && outcome.verdict != Verdict::Skipped
                && let Err(lost) = alive(&mut ctx)
            {
                report.died_at.get_or_insert(case.named.id);
                outcome = Outcome::failed(
                    outcome.expected.clone(),
                    format!("server {lost}; before that: {}", outcome.actual),
                );
                let what = match lost.starts_with("died") {
                    true => "died",
                    false => "stopped answering",
                };
                if report.died_at == Some(case.named.id) {
                    report.lost = what;
                }
                gone = revive(&mut ctx, case.named.id, what);
            }
            if case.named.id == "0.1" && outcome.verdict == Verdict::Failed {
                gone = Some("the server could not be reached (0.1)".into());
            }
            outcome
        };
        rows(&case.named, &outcome)?;
        report.results.push((case.named, outcome));
    }
    if let Some(mut managed) = ctx.managed.take() {
        managed.stop();
    }
    if !json {
        writeln!(out, "{}\n", report.tally())?;
    } else {
        writeln!(out, "{}", report.json(target.as_deref()))?;
    }
    Ok(report)
}

/// Whether the server still serves: a fresh connection, its greeting and, in echo mode,
/// one echo. `Err` says how it was lost: "died (...)" when it refuses connections or its
/// process has exited, "stopped answering (...)" when it takes them and no longer
/// serves. Either way the cases after it would say nothing.
fn alive(ctx: &mut Ctx) -> Result<(), String> {
    let answered = match ctx.connect(None) {
        Err(refused) => Err(format!("died ({})", refused.actual)),
        Ok(mut probe) => {
            let greeted = ctx
                .greeting(&mut probe)
                .map(drop)
                .map_err(|e| format!("no greeting: {e}"));
            greeted
                .and_then(|()| match ctx.settings.mode {
                    Mode::Echo => echo(&mut probe, ctx, b"netlab check: still there?", "a message")
                        .map_err(|o| o.actual),
                    _ => Ok(()),
                })
                .map_err(|why| format!("stopped answering ({why})"))
        }
    };
    let Err(lost) = answered else {
        return Ok(());
    };
    // A process that is dying says why better than its closed port does.
    if let Some(managed) = ctx.managed.as_mut() {
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            if let Some(how) = managed.exited() {
                return Err(format!("died (the process exited: {how})"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // A server dying as it is checked can still take a connection into its queue, then
    // reset it: a moment later its port refuses, which tells death from silence.
    if !lost.starts_with("died") {
        std::thread::sleep(Duration::from_millis(200));
        if let Err(refused) = ctx.connect(None) {
            return Err(format!("died ({})", refused.actual));
        }
    }
    Err(lost)
}

/// After the server was lost at `id` (it `what`: died, stopped answering): with --exec,
/// the server started again (`None`); otherwise why the remaining cases are skipped.
fn revive(ctx: &mut Ctx, id: &str, what: &str) -> Option<String> {
    let Some(managed) = ctx.managed.as_mut() else {
        return Some(format!("the server {what} at {id}"));
    };
    match managed.restart() {
        Ok(_) => {
            ctx.server = managed.addr();
            None
        }
        Err(e) => Some(format!(
            "the server {what} at {id} and did not start again: {e}"
        )),
    }
}

/// `--list`: every case with its task, title and where it applies.
pub fn list(out: &mut dyn Write) -> std::io::Result<()> {
    for case in cases::all() {
        writeln!(
            out,
            "{:<5} task {:<3} {}",
            case.named.id, case.named.task, case.named.title
        )?;
    }
    Ok(())
}
