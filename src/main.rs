use std::io::{self, IsTerminal};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use tokio::signal::unix::{SignalKind, signal};

use netlab::cli::prompt;
use netlab::cli::{Cli, Command, ServeMode, ServerArgs};
use netlab::client::ClientConfig;
use netlab::credentials::password::Hasher;
use netlab::handler::{Auth, Echo, Ident};
use netlab::logging;
use netlab::server::{self, Framed, Protocol, RawEcho};
use netlab::store::{SharedStore, Store};
use netlab::tools::{admin, bench};
use netlab::transport::listen;
use netlab::wire::CodecKind as Codec;

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
        Command::Serve {
            mode: ServeMode::Echo { server, codec },
        } => match codec {
            Codec::Framed => serve(server, |args| Ok(Framed::new(Echo, args.limits()))),
            Codec::Raw => serve(server, |args| {
                Ok(RawEcho {
                    idle_timeout: args.idle_timeout,
                    write_timeout: args.frame_timeout,
                })
            }),
        },
        Command::Serve {
            mode: ServeMode::Ident { server, db },
        } => serve(server, |args| {
            let store = SharedStore::new(Store::open(&db.path()?)?);
            Ok(Framed::new(Ident::new(store), args.limits()))
        }),
        Command::Serve {
            mode: ServeMode::Auth { server, db, auth },
        } => serve(server, |args| {
            let slots = auth
                .hash_slots
                .map_or_else(Hasher::default_slots, usize::from);
            let hasher = Hasher::new(auth.scrypt_log_n, slots)?;
            let store = SharedStore::new(Store::open(&db.path()?)?);
            let handler = Auth::new(store, hasher, auth.config());
            Ok(Framed::new(handler, args.limits()))
        }),
        Command::Clients { action } => {
            logging::init_tool();
            admin::clients(action, &mut io::stdout().lock())
        }
        Command::Users { action } => {
            logging::init_tool();
            admin::users(action, &mut io::stdout().lock())
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
                ..args.client_config()
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
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "netlab", &mut io::stdout());
            Ok(())
        }
    }
}

/// Asks for the port if needed, starts the log, sets up the mode, binds, announces the
/// address on stdout, and serves until Ctrl-C or SIGTERM. A fatal error goes to the log
/// as well as stderr.
fn serve<P: Protocol>(
    mut args: ServerArgs,
    protocol: impl FnOnce(&ServerArgs) -> anyhow::Result<P>,
) -> anyhow::Result<()> {
    args.port = prompt::port(args.port_given, args.port, true)?;
    restrict_new_files();
    netlab::limits::raise_fd_limit();
    logging::init_server(args.log_config.as_deref())?;
    let result = protocol(&args).and_then(|protocol| {
        let runtime = tokio::runtime::Runtime::new().context("could not start the runtime")?;
        runtime.block_on(listen_and_serve(&args, protocol))
    });
    if let Err(e) = &result {
        log::error!("{e:#}");
    }
    result
}

async fn listen_and_serve(args: &ServerArgs, protocol: impl Protocol) -> anyhow::Result<()> {
    let listener = listen::bind(&args.host, args.port, args.port_retries).await?;
    // Both handlers are installed before `listening on` is printed: whoever reads that
    // line may signal at once, and a signal without a handler would kill the server
    // with no goodbye to its clients. (`tokio::signal::ctrl_c()` installs its handler
    // only when first polled, which is too late.)
    let mut term = signal(SignalKind::terminate()).context("could not handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("could not handle SIGINT")?;
    let shutdown = async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    };
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    log::info!("listening on {addr}");
    server::serve(listener, protocol, args.server_config(), shutdown).await;
    Ok(())
}

/// What a server creates (its log, its database) is readable by its owner only, whatever
/// a log configuration or SQLite would choose.
fn restrict_new_files() {
    // SAFETY: umask has no preconditions and cannot fail; it only sets this process's
    // file creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
