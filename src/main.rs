use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::CommandFactory;

use netlab::cli::prompt;
use netlab::cli::{Cli, Command};
use netlab::client::ClientConfig;
use netlab::logging;
use netlab::tools::{admin, bench, check};

fn main() -> ExitCode {
    match run(Cli::parse_and_mark()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.is::<Quiet>() => e.downcast_ref::<Quiet>().map_or(ExitCode::FAILURE, |q| q.0),
        Err(e) => {
            eprintln!("netlab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { mode } => netlab::cli::serve::run(mode),
        Command::Clients { action } => {
            logging::init_tool();
            admin::clients(action, &mut io::stdout().lock())
        }
        Command::Users { action } => {
            logging::init_tool();
            admin::users(action, &mut io::stdin().lock(), &mut io::stdout().lock())
        }
        Command::Sessions { action } => {
            logging::init_tool();
            admin::sessions(action, &mut io::stdout().lock())
        }
        Command::Connect(args) => {
            logging::init_tool();
            let config = ClientConfig {
                host: prompt::host(args.host_given, args.host.clone())?,
                port: prompt::port(args.port_given, args.port, false)?,
                ..args.client_config()?
            };
            netlab::client::run(&config)
        }
        Command::Bench(args) => {
            logging::init_tool();
            let config = args.config(io::stderr().is_terminal())?;
            let report = bench::run(config.clone())?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", bench::render(&report, &config));
            }
            match bench::failed(&report) {
                Some(problem) => anyhow::bail!("{problem}"),
                None => Ok(()),
            }
        }
        Command::Check(args) => {
            logging::init_tool();
            if args.list {
                return Ok(check::list(&mut io::stdout().lock())?);
            }
            let (settings, servers) = args.plan().unwrap_or_else(|e| {
                let kind = clap::error::ErrorKind::ArgumentConflict;
                Cli::command().error(kind, format!("{e:#}")).exit()
            });
            let output = check::Output {
                out: &mut io::stdout().lock(),
                json: args.json,
                junit: args.junit.clone(),
            };
            match check::run(&settings, servers, output)? {
                check::Verdicts::Passed => Ok(()),
                check::Verdicts::Failed => Err(Quiet(ExitCode::FAILURE).into()),
                check::Verdicts::Unreachable => Err(Quiet(ExitCode::from(2)).into()),
            }
        }
        Command::Tls { action } => {
            logging::init_tool();
            netlab::tools::tls::run(action, &mut io::stdout().lock())
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "netlab", &mut io::stdout());
            Ok(())
        }
    }
}

/// An exit status whose reason the output has given already (a report's failures).
#[derive(Debug)]
struct Quiet(ExitCode);

impl std::fmt::Display for Quiet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("see the report")
    }
}

impl std::error::Error for Quiet {}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
