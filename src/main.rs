use std::io;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use netlab::cli::{Cli, Codec, Command, ServeMode, ServerArgs};
use netlab::server::{self, Echo, Framed, Protocol, RawEcho};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.command);
    match run(cli) {
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
        Command::Serve {
            mode: ServeMode::Echo { server, codec },
        } => match codec {
            Codec::Framed => serve(&server, Framed::new(Echo, server.limits())),
            Codec::Raw => serve(
                &server,
                RawEcho {
                    idle_timeout: server.idle_timeout,
                    write_timeout: server.frame_timeout,
                },
            ),
        },
        Command::Connect(args) => netlab::client::run(&args.client_config()),
    }
}

/// Binds, announces the address on stdout, and serves until Ctrl-C or SIGTERM.
fn serve(args: &ServerArgs, protocol: impl Protocol) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("could not start the runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("could not listen on {}:{}", args.host, args.port))?;
        let mut term = signal(SignalKind::terminate()).context("could not handle SIGTERM")?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        let addr = listener.local_addr()?;
        println!("listening on {addr}");
        log::info!("listening on {addr}");
        server::serve(listener, protocol, args.server_config(), shutdown).await;
        Ok(())
    })
}

/// Servers report their service messages; the client and admin commands stay quiet
/// unless RUST_LOG asks for more.
fn init_logging(command: &Command) {
    let default = match command {
        Command::Serve { .. } => "info",
        Command::Connect(_) => "warn",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .target(env_logger::Target::Stderr)
        .init();
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
