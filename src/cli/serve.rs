//! `netlab serve MODE`: from the flags to a running server.
//!
//! In order: ask for the port if needed, make new files private, start the service log
//! (and say on stderr where it is), set the mode up (its database, its hashing threads,
//! with --tls its certificate), bind, print `listening on ADDR` as the first line of
//! stdout (then with --tls `tls certificate sha256:HEX`; on stderr, a move to another
//! port), and serve until Ctrl-C or SIGTERM. A fatal error goes to the log as
//! well as to stderr.
//!
//! This is the one place where a codec meets a handler: adding a codec means one more
//! arm in [`conversation`].

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use super::prompt;
use super::{FrontExecArgs, ServeMode, ServerArgs};
use crate::credentials::password::Hasher;
use crate::handler::gated::Gate;
use crate::handler::{Auth, Echo, Exec, Gated, Handler, Ident};
use crate::server::{self, Conversation, RawEcho, ServerConfig, Service, Tls};
use crate::store::{SharedStore, Store};
use crate::transport::listen;
use crate::wire::{CodecKind, Framed, Lines};
use crate::{logging, process};

/// Connections one address may have open at once, in the modes that do database and
/// hashing work per connection (`--max-per-address`). Echo has no cap unless given.
const PER_ADDRESS: Option<u32> = Some(32);

/// Runs the server `mode` until it is told to stop.
pub fn run(mode: ServeMode) -> anyhow::Result<()> {
    let name = mode.name();
    match mode {
        ServeMode::Echo {
            server,
            codec: CodecKind::Raw,
        } => serve(name, server, None, |args| {
            Ok(RawEcho {
                idle_timeout: args.idle_timeout,
                write_timeout: args.frame_timeout,
            })
        }),
        ServeMode::Echo { server, codec } => conversation(name, server, codec, None, |_| Ok(Echo)),
        ServeMode::Ident {
            server,
            codec,
            db,
            exec,
        } => {
            let front = |_: &ServerArgs| -> anyhow::Result<Ident> {
                Ok(Ident::new(SharedStore::new(Store::open(&db.path()?)?)))
            };
            front_of_program(name, server, codec.kind, &exec, front)
        }
        ServeMode::Auth {
            server,
            codec,
            db,
            auth,
            exec,
        } => {
            let front = |_: &ServerArgs| -> anyhow::Result<Auth> {
                let slots = auth
                    .hash_slots
                    .map_or_else(Hasher::default_slots, usize::from);
                let hasher = Hasher::new(auth.scrypt_log_n, slots)?;
                let store = SharedStore::new(Store::open(&db.path()?)?);
                Ok(Auth::new(store, hasher, auth.config()))
            };
            front_of_program(name, server, codec.kind, &exec, front)
        }
        ServeMode::Exec {
            server,
            codec,
            exec,
        } => {
            let config = exec.config(server.limits().max_frame)?;
            with_programs(conversation(name, server, codec.kind, None, |_| {
                Ok(Exec::new(config))
            }))
        }
    }
}

/// A sign-in mode (`front`), followed with `--exec` by a program once the client is
/// known.
fn front_of_program<H: Gate>(
    name: &str,
    server: ServerArgs,
    codec: CodecKind,
    exec: &FrontExecArgs,
    front: impl FnOnce(&ServerArgs) -> anyhow::Result<H>,
) -> anyhow::Result<()> {
    match exec.config(server.limits().max_frame)? {
        None => conversation(name, server, codec, PER_ADDRESS, front),
        Some(program) => with_programs(conversation(name, server, codec, PER_ADDRESS, |args| {
            Ok(Gated::new(front(args)?, program))
        })),
    }
}

/// A server's result, once whatever is left of its programs has been ended: none
/// outlives the server.
fn with_programs(result: anyhow::Result<()>) -> anyhow::Result<()> {
    crate::handler::exec::end_all();
    result
}

/// Serves a handler in messages of `codec`.
fn conversation<H: Handler>(
    name: &str,
    args: ServerArgs,
    codec: CodecKind,
    per_address: Option<u32>,
    handler: impl FnOnce(&ServerArgs) -> anyhow::Result<H>,
) -> anyhow::Result<()> {
    let limits = args.limits();
    match codec {
        CodecKind::Framed => serve(name, args, per_address, |args| {
            Ok(Conversation::<Framed, _>::new(handler(args)?, limits))
        }),
        CodecKind::Lines => serve(name, args, per_address, |args| {
            Ok(Conversation::<Lines, _>::new(handler(args)?, limits))
        }),
        CodecKind::Raw => anyhow::bail!("--codec raw has no messages: it is for echo only"),
    }
}

fn serve<S: Service>(
    name: &str,
    mut args: ServerArgs,
    per_address: Option<u32>,
    service: impl FnOnce(&ServerArgs) -> anyhow::Result<S>,
) -> anyhow::Result<()> {
    args.port = prompt::port(args.port_given, args.port, true)?;
    process::restrict_new_files();
    process::raise_fd_limit();
    let log = logging::init_server(args.log_config.as_deref(), name)?;
    // Said once, so that whoever started the server knows where to look.
    eprintln!("netlab: service log: {log}");
    if name == "auth" && !args.tls && !is_loopback(&args.host) {
        let warning = format!(
            "listening on {} without --tls: passwords and session tokens will cross the \
             network in clear",
            args.host
        );
        eprintln!("netlab: warning: {warning}");
        log::warn!("{warning}");
    }
    let result = service(&args).and_then(|service| {
        let identity = args.tls_identity()?;
        let config = args.server_config(per_address);
        let runtime = tokio::runtime::Runtime::new().context("could not start the runtime")?;
        match identity {
            None => runtime.block_on(listen_and_serve(name, &args, config, service, None)),
            Some(identity) => {
                let service = Tls::new(service, identity.acceptor()?, args.frame_timeout);
                let fingerprint = identity.fingerprint();
                runtime.block_on(listen_and_serve(
                    name,
                    &args,
                    config,
                    service,
                    Some(fingerprint),
                ))
            }
        }
    });
    if let Err(e) = &result {
        log::error!("{e:#}");
    }
    result
}

/// Whether `host` is a loopback address or `localhost`: traffic that never leaves the
/// machine.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Binds, says where (and with --tls, the certificate's fingerprint), and serves.
async fn listen_and_serve(
    name: &str,
    args: &ServerArgs,
    config: ServerConfig,
    service: impl Service,
    fingerprint: Option<String>,
) -> anyhow::Result<()> {
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
    logging::name_server(&format!("{name} {addr}"));
    if args.port != 0 && addr.port() != args.port {
        eprintln!(
            "netlab: port {} is in use; listening on {} instead",
            args.port,
            addr.port()
        );
    }
    println!("listening on {addr}");
    log::info!("listening on {addr} (pid {})", std::process::id());
    if let Some(fingerprint) = fingerprint {
        println!("tls certificate {fingerprint}");
        log::info!("tls certificate {fingerprint}");
    }
    server::serve(listener, service, config, shutdown).await;
    Ok(())
}
