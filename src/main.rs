use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::CommandFactory;

use netlab::cli::prompt;
use netlab::cli::{Cli, Command};
use netlab::client::ClientConfig;
use netlab::logging;
use netlab::tools::{admin, bench};

fn main() -> ExitCode {
    match run(Cli::parse_and_mark()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
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

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
