//! The command line: what the user may type, with defaults and environment variables,
//! and its translation into the settings the rest of netlab takes.
//!
//! Every value is validated here, so that a bad flag or environment variable ends the
//! program with a usage error (exit status 2) naming it, before anything starts. A host
//! or port that was not given at all, by flag or environment, is marked so that it can
//! be asked for (see [`prompt`]).

pub mod prompt;
pub mod serve;

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use clap_complete::Shell;

use crate::client::ClientConfig;
use crate::client::trust::Trust;
use crate::handler::ExecConfig;
use crate::handler::auth::Registration;
use crate::server::ServerConfig;
use crate::tools::admin::{ClientsAction, DbArgs, SessionsAction, UsersAction};
use crate::tools::tls::TlsAction;
use crate::transport::tls::{self, Identity};
use crate::wire::CodecKind;
use crate::wire::connection::Limits;
use crate::wire::frame::DEFAULT_MAX_FRAME;

#[derive(Debug, Parser)]
#[command(name = "netlab", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a server until Ctrl-C or SIGTERM.
    Serve {
        #[command(subcommand)]
        mode: ServeMode,
    },
    /// Talk to a server: show each of its messages, send each line typed.
    Connect(ConnectArgs),
    /// See or forget the clients the identification server knows.
    Clients {
        #[command(subcommand)]
        action: ClientsAction,
    },
    /// See or delete the users of the authentication server.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// See or end the sessions of the authentication server (tokens are never shown).
    Sessions {
        #[command(subcommand)]
        action: SessionsAction,
    },
    /// Load an echo server and measure it: messages/s, latency percentiles, errors.
    Bench(BenchArgs),
    /// Grade any server of the lab: numbered cases, one verdict each (OK, NON-STRICT,
    /// INFORMATIONAL, FAILED, SKIPPED). Exit status 0: no case failed; 1: one did;
    /// 2: the server could not be reached.
    Check(CheckArgs),
    /// See or renew the certificate of `serve --tls`.
    Tls {
        #[command(subcommand)]
        action: TlsAction,
    },
    /// Print a shell completion script, e.g. `netlab completions bash > /etc/bash_completion.d/netlab`.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServeMode {
    /// Answer each message with the same text (lab task 3).
    Echo {
        #[command(flatten)]
        server: ServerArgs,
        /// `framed`: length-prefixed messages (netlab connect, the lab's clients);
        /// `lines`: a line of text per message (nc, telnet); `raw`: bytes back verbatim,
        /// no greeting (nc, generic echo load generators).
        #[arg(long, value_enum, env = "NETLAB_CODEC", default_value_t = CodecKind::Framed)]
        codec: CodecKind,
    },
    /// Know clients by IP address and greet them by name (lab task 7).
    Ident {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        codec: MessageCodecArg,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        exec: FrontExecArgs,
    },
    /// Sign users in with passwords and session tokens (lab task 8).
    Auth {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        codec: MessageCodecArg,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        exec: FrontExecArgs,
    },
    /// Run a program for each connection: each message a line on its stdin, each line it
    /// writes a message back (`netlab serve exec -- python3 plugin.py`).
    Exec {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        codec: MessageCodecArg,
        #[command(flatten)]
        exec: ExecArgs,
    },
}

/// The program of `serve exec`, and how it is run.
#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub plugin: PluginArgs,
    /// The program and its arguments, after `--`; run directly, no shell.
    #[arg(last = true, required = true, num_args = 1.., value_name = "PROGRAM")]
    pub program: Vec<OsString>,
}

/// `--exec -- PROGRAM`: the program that takes over once the client is known.
#[derive(Debug, Args)]
pub struct FrontExecArgs {
    /// Once the client is known (signed in; named), go on with the program given after
    /// `--`, which learns who it is from NETLAB_USER (auth) or NETLAB_NAME (ident).
    #[arg(long, env = "NETLAB_EXEC", requires = "front_program")]
    pub exec: bool,
    #[command(flatten)]
    pub plugin: PluginArgs,
    /// With --exec: the program and its arguments, after `--`.
    #[arg(
        id = "front_program",
        last = true,
        requires = "exec",
        value_name = "PROGRAM"
    )]
    pub program: Vec<OsString>,
}

/// How a plugin program is run, in every mode that runs one.
#[derive(Debug, Args)]
pub struct PluginArgs {
    /// Longest wait for the program's greeting, for each of its answers, and for it to
    /// read a message.
    #[arg(long, env = "NETLAB_PLUGIN_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub plugin_timeout: Duration,
    /// A variable of netlab's environment to pass on to the program (repeatable);
    /// besides PATH, LANG and HOME, nothing else is.
    #[arg(
        long,
        env = "NETLAB_PASS_ENV",
        value_name = "VAR",
        value_delimiter = ','
    )]
    pub pass_env: Vec<String>,
}

impl PluginArgs {
    /// `command` (program, then arguments) run this way; the program is found now.
    fn config(&self, command: &[OsString], max_line: usize) -> anyhow::Result<Option<ExecConfig>> {
        let Some((program, args)) = command.split_first() else {
            return Ok(None);
        };
        Ok(Some(ExecConfig {
            program: crate::handler::exec::find_program(program)?,
            args: args.to_vec(),
            timeout: self.plugin_timeout,
            pass_env: self.pass_env.clone(),
            max_line,
        }))
    }
}

impl FrontExecArgs {
    /// The program, if --exec gave one.
    pub fn config(&self, max_line: usize) -> anyhow::Result<Option<ExecConfig>> {
        self.plugin.config(&self.program, max_line)
    }
}

impl ExecArgs {
    pub fn config(&self, max_line: usize) -> anyhow::Result<ExecConfig> {
        self.plugin
            .config(&self.program, max_line)?
            .ok_or_else(|| anyhow::anyhow!("no program given after --"))
    }
}

impl ServeMode {
    /// The mode's name, as typed after `netlab serve`.
    pub fn name(&self) -> &'static str {
        match self {
            ServeMode::Echo { .. } => "echo",
            ServeMode::Ident { .. } => "ident",
            ServeMode::Auth { .. } => "auth",
            ServeMode::Exec { .. } => "exec",
        }
    }

    pub fn server_args_mut(&mut self) -> &mut ServerArgs {
        match self {
            ServeMode::Echo { server, .. }
            | ServeMode::Ident { server, .. }
            | ServeMode::Auth { server, .. }
            | ServeMode::Exec { server, .. } => server,
        }
    }
}

/// `--codec` for the modes that need messages: every codec but `raw`.
#[derive(Debug, Args)]
pub struct MessageCodecArg {
    /// `framed`: length-prefixed messages (netlab connect, the lab's clients);
    /// `lines`: a line of text per message (nc, telnet).
    #[arg(long = "codec", env = "NETLAB_CODEC", default_value = "framed", value_name = "CODEC",
          value_parser = clap::builder::PossibleValuesParser::new(["framed", "lines"])
              .map(|s| <CodecKind as clap::ValueEnum>::from_str(&s, false).expect("listed")))]
    pub kind: CodecKind,
}

#[derive(Debug, Args)]
pub struct AuthArgs {
    /// scrypt cost of new password hashes: N = 2^this, with r = 8, p = 1. 17 needs
    /// 128 MiB and a fraction of a second per hash; lower it only for tests or slow
    /// machines.
    #[arg(long, env = "NETLAB_SCRYPT_LOG_N", default_value_t = 17,
          value_parser = clap::value_parser!(u8).range(1..=21))]
    pub scrypt_log_n: u8,
    /// Password hashes computed at once; further logins wait. Default: one per core.
    #[arg(long, env = "NETLAB_HASH_SLOTS",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub hash_slots: Option<u16>,
    /// Close a connection that has not signed in within this time.
    #[arg(long, env = "NETLAB_LOGIN_TIMEOUT", default_value = "30s", value_parser = parse_timeout)]
    pub login_timeout: Duration,
    /// A session ends after this long without use.
    #[arg(long, env = "NETLAB_SESSION_IDLE", default_value = "7days", value_parser = parse_timeout)]
    pub session_idle: Duration,
    /// A session ends this long after its password login, used or not.
    #[arg(long, env = "NETLAB_SESSION_LIFETIME", default_value = "30days", value_parser = parse_timeout)]
    pub session_lifetime: Duration,
    /// Who may create accounts.
    #[arg(long, value_enum, env = "NETLAB_REGISTRATION", default_value_t = Registration::Open)]
    pub registration: Registration,
    /// New accounts one address may register in an hour.
    #[arg(long, env = "NETLAB_REGISTRATIONS_PER_HOUR", default_value_t = 10)]
    pub registrations_per_hour: u32,
}

impl AuthArgs {
    pub fn config(&self) -> crate::handler::AuthConfig {
        // Ten years is far beyond any sensible session, and keeps stored times in range.
        const TEN_YEARS: u64 = 10 * 366 * 86400;
        let secs = |d: Duration| d.as_secs().clamp(1, TEN_YEARS) as i64;
        crate::handler::AuthConfig {
            login_timeout: self.login_timeout,
            sessions: crate::store::SessionLimits {
                idle_secs: secs(self.session_idle),
                lifetime_secs: secs(self.session_lifetime),
            },
            registration: self.registration,
            registrations_per_hour: self.registrations_per_hour,
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Server address.
    #[arg(long, env = "NETLAB_HOST", default_value = "127.0.0.1", value_parser = parse_host)]
    pub host: String,
    /// Server port.
    #[arg(short, long, env = "NETLAB_PORT", default_value_t = 9090,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Connections sending at once.
    #[arg(long, env = "NETLAB_BENCH_CONNS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub conns: u32,
    /// Bytes per message.
    #[arg(long, env = "NETLAB_BENCH_SIZE", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=16 * 1024 * 1024))]
    pub size: u32,
    /// Messages in flight per connection.
    #[arg(long, env = "NETLAB_BENCH_PIPELINE", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub pipeline: u32,
    /// How long to measure, after the warm-up.
    #[arg(long, env = "NETLAB_BENCH_DURATION", default_value = "5s", value_parser = parse_timeout)]
    pub duration: Duration,
    /// How long to run before measuring.
    #[arg(long, env = "NETLAB_BENCH_WARMUP", default_value = "1s",
          value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// `framed`: 4-byte length headers; `lines`: a line per message; `raw`: bytes only
    /// (for `serve echo --codec raw`).
    #[arg(long, value_enum, env = "NETLAB_CODEC", default_value_t = CodecKind::Framed)]
    pub codec: CodecKind,
    /// The server does not send a greeting (a bare codec server, such as the baseline).
    #[arg(long, env = "NETLAB_BENCH_NO_GREETING")]
    pub no_greeting: bool,
    /// Instead of load: open this many idle connections, hold them for the duration,
    /// then check that each still echoes.
    #[arg(long, env = "NETLAB_BENCH_HOLD", default_value_t = 0)]
    pub hold: u32,
    /// Instead of load: each of --conns slots connects, sends one message, checks its
    /// echo and closes, again and again; reports connections per second.
    #[arg(long, env = "NETLAB_BENCH_RECONNECT", conflicts_with = "hold")]
    pub reconnect: bool,
    /// Speak TLS (`serve --tls`). The certificate is not judged: bench only your own
    /// servers.
    #[arg(long, env = "NETLAB_TLS")]
    pub tls: bool,
    /// With --tls: no session resumption, every handshake in full (for --reconnect).
    #[arg(long, env = "NETLAB_BENCH_TLS_FRESH", requires = "tls")]
    pub tls_fresh: bool,
    /// Report the CPU time this server process spends per message (it must run here).
    #[arg(long, env = "NETLAB_BENCH_SERVER_PID", value_name = "PID")]
    pub server_pid: Option<u32>,
    /// One JSON line instead of the table, for scripts.
    #[arg(long, env = "NETLAB_JSON")]
    pub json: bool,
}

impl BenchArgs {
    /// The benchmark's settings, with the host resolved.
    pub fn config(&self, progress: bool) -> anyhow::Result<crate::tools::bench::BenchConfig> {
        Ok(crate::tools::bench::BenchConfig {
            server: resolve(&self.host, self.port)?,
            conns: self.conns as usize,
            size: self.size as usize,
            pipeline: self.pipeline as usize,
            duration: self.duration,
            warmup: self.warmup,
            codec: self.codec,
            greeting: !self.no_greeting,
            hold: self.hold as usize,
            server_pid: self.server_pid,
            max_frame: DEFAULT_MAX_FRAME,
            progress: progress && !self.json,
            tls: self
                .tls
                .then(|| crate::client::trust::unjudged(!self.tls_fresh))
                .transpose()?
                .map(std::sync::Arc::new),
            reconnect: self.reconnect,
        })
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Server address.
    #[arg(long, env = "NETLAB_HOST", default_value = "127.0.0.1", value_parser = parse_host)]
    pub host: String,
    /// Server port (default 9090). With --exec: the port the server is told to use (by
    /// `{port}` in the command or --exec-stdin); without it, a free one is chosen for
    /// `{port}`, or the port is found in what the server prints.
    #[arg(short, long, env = "NETLAB_PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// How the server cuts messages.
    #[arg(long, value_enum, env = "NETLAB_CODEC", default_value_t = CodecKind::Framed)]
    pub codec: CodecKind,
    /// The dialogue to check: echo (tasks 3, 9, 10), ident (task 7) or auth (task 8).
    #[arg(long, value_enum, env = "NETLAB_CHECK_MODE", default_value_t = crate::tools::check::Mode::Echo)]
    pub mode: crate::tools::check::Mode,
    /// Longest wait of each step: a connection, a reply, a close.
    #[arg(long, env = "NETLAB_CHECK_TIMEOUT", default_value = "3s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Most time spent on one server; the cases left after it are SKIPPED.
    #[arg(long, env = "NETLAB_CHECK_BUDGET", default_value = "2m", value_parser = parse_timeout)]
    pub budget: Duration,
    /// The server's largest message in bytes (framed and lines), sent whole in 9.1.
    #[arg(long, env = "NETLAB_MAX_FRAME", default_value_t = DEFAULT_MAX_FRAME as u64,
          value_parser = max_frame_parser())]
    pub max_frame: u64,
    /// Only the cases matching these patterns, comma-separated (`9.*`, `3.?,10.1`).
    #[arg(
        long,
        env = "NETLAB_CHECK_CASES",
        default_value = "*",
        value_name = "GLOB"
    )]
    pub cases: String,
    /// List the cases and exit.
    #[arg(long, env = "NETLAB_CHECK_LIST")]
    pub list: bool,
    /// Count NON-STRICT verdicts as failures.
    #[arg(long, env = "NETLAB_CHECK_STRICT")]
    pub strict: bool,
    /// One JSON line per server instead of the table, for scripts.
    #[arg(long, env = "NETLAB_JSON")]
    pub json: bool,
    /// Also write the results as JUnit XML, for CI systems.
    #[arg(long, env = "NETLAB_CHECK_JUNIT", value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Start each server with this command and stop it after its cases: `{}` is the
    /// target, `{port}` the port. Words are split as a shell would, but no shell runs
    /// unless the command names one. It runs in the target's directory, as you: check
    /// only code you are willing to run.
    #[arg(long, env = "NETLAB_CHECK_EXEC", value_name = "COMMAND")]
    pub exec: Option<String>,
    /// With --exec: typed into the server's input, then closed (its prompts, e.g. the
    /// port: task 4). `{port}` is replaced; a final newline is added if missing.
    #[arg(
        long,
        env = "NETLAB_CHECK_EXEC_STDIN",
        value_name = "TEXT",
        requires = "exec"
    )]
    pub exec_stdin: Option<String>,
    /// With --exec: how long a server has to start listening.
    #[arg(long, env = "NETLAB_CHECK_START_TIMEOUT", default_value = "10s", value_parser = parse_timeout,
          requires = "exec")]
    pub start_timeout: Duration,
    /// With --exec: the servers to start, one after another (files or directories).
    #[arg(value_name = "TARGET", requires = "exec")]
    pub targets: Vec<PathBuf>,
}

impl CheckArgs {
    /// The checker's settings, and where its servers are.
    pub fn plan(
        &self,
    ) -> anyhow::Result<(crate::tools::check::Settings, crate::tools::check::Servers)> {
        use crate::tools::check::{Mode, Servers, Settings};
        if self.mode != Mode::Echo && self.codec == CodecKind::Raw {
            anyhow::bail!(
                "--mode {} needs messages: --codec framed or lines",
                self.mode.name()
            );
        }
        let settings = Settings {
            codec: self.codec,
            mode: self.mode,
            timeout: self.timeout,
            max_frame: to_usize(self.max_frame),
            budget: self.budget,
            strict: self.strict,
            cases: self.cases.clone(),
        };
        let ip = resolve(&self.host, self.port.unwrap_or(9090))?;
        let servers = match &self.exec {
            None => Servers::At(ip),
            Some(command) => Servers::Exec {
                exec: crate::tools::check::target::Exec {
                    command: command.clone(),
                    stdin: self.exec_stdin.clone(),
                    port: self.port,
                    ip: ip.ip(),
                    start_timeout: self.start_timeout,
                },
                targets: self.targets.clone(),
            },
        };
        Ok((settings, servers))
    }
}

/// The first address of `host`.
fn resolve(host: &str, port: u16) -> anyhow::Result<std::net::SocketAddr> {
    use anyhow::Context;
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("could not resolve {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on (an IP address or a host name).
    #[arg(long, env = "NETLAB_HOST", default_value = "127.0.0.1", value_parser = parse_host)]
    pub host: String,
    /// Port to listen on; 0 lets the system choose. Asked for on a terminal when not given.
    #[arg(short, long, env = "NETLAB_PORT", default_value_t = 9090)]
    pub port: u16,
    /// When the port is in use, try up to this many following ports.
    #[arg(long, env = "NETLAB_PORT_RETRIES", default_value_t = 50)]
    pub port_retries: u16,
    /// log4rs configuration file (see log4rs.yaml). Without one, the log is a rolling file
    /// in the user's data directory (~/.local/share/netlab/netlab.log on Linux).
    #[arg(long, env = "NETLAB_LOG_CONFIG", value_name = "PATH")]
    pub log_config: Option<PathBuf>,
    /// Largest message accepted or sent, in bytes.
    #[arg(long, env = "NETLAB_MAX_FRAME", default_value_t = DEFAULT_MAX_FRAME as u64,
          value_parser = max_frame_parser())]
    pub max_frame: u64,
    /// Most clients served at once; more wait in the system's queue.
    #[arg(long, env = "NETLAB_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Most connections one address may have open at once (an IPv6 client counts by its
    /// /64); past it a client is told why and closed. 0: no cap. Default: 32 for ident
    /// and auth; no cap for echo, a test server that people load from one machine.
    #[arg(long, env = "NETLAB_MAX_PER_ADDRESS", value_name = "N")]
    pub max_per_address: Option<u32>,
    /// Close a connection that sends no message for this long (e.g. 90s, 5m).
    #[arg(long, env = "NETLAB_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_timeout)]
    pub idle_timeout: Duration,
    /// Close a connection that takes longer than this to finish a message it began, or to
    /// read its replies.
    #[arg(long, env = "NETLAB_FRAME_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub frame_timeout: Duration,
    /// Speak TLS 1.3 or 1.2 on every connection. Without --tls-cert, a self-signed
    /// certificate made on first use and kept in the user's data directory
    /// (~/.local/share/netlab/tls/) is presented.
    #[arg(long, env = "NETLAB_TLS")]
    pub tls: bool,
    /// Certificate chain to present with --tls (PEM), instead of the generated one.
    #[arg(
        long,
        env = "NETLAB_TLS_CERT",
        value_name = "PATH",
        requires = "tls",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM), readable by its owner only.
    #[arg(
        long,
        env = "NETLAB_TLS_KEY",
        value_name = "PATH",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Whether --port was given (by flag or environment) rather than defaulted.
    #[arg(skip)]
    pub port_given: bool,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Server address (an IP address or a host name). Asked for on a terminal when not
    /// given.
    #[arg(long, env = "NETLAB_HOST", default_value = "127.0.0.1", value_parser = parse_host)]
    pub host: String,
    /// Server port. Asked for on a terminal when not given.
    #[arg(short, long, env = "NETLAB_PORT", default_value_t = 9090,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Largest message accepted or sent, in bytes.
    #[arg(long, env = "NETLAB_MAX_FRAME", default_value_t = DEFAULT_MAX_FRAME as u64,
          value_parser = max_frame_parser())]
    pub max_frame: u64,
    /// `framed`: length-prefixed messages; `lines`: a line of text per message; `raw`:
    /// bytes as they are, both ways, like nc (for any TCP service).
    #[arg(long, value_enum, env = "NETLAB_CODEC", default_value_t = CodecKind::Framed)]
    pub codec: CodecKind,
    /// How long to wait for the server's greeting before giving up.
    #[arg(long, env = "NETLAB_GREETING_TIMEOUT", default_value = "5s", value_parser = parse_timeout)]
    pub greeting_timeout: Duration,
    /// How long to wait for each answer, and for the server to close after the end of
    /// input, before giving up.
    #[arg(long, env = "NETLAB_REPLY_TIMEOUT", default_value = "30s", value_parser = parse_timeout)]
    pub reply_timeout: Duration,
    /// Source address to connect from, so one machine can play several clients over
    /// loopback (127.0.0.2, 127.0.0.3, ...).
    #[arg(long, env = "NETLAB_BIND", value_name = "ADDR")]
    pub bind: Option<IpAddr>,
    /// Where session tokens are kept, one per server, readable by you only. Default:
    /// the user's state directory (~/.local/state/netlab/tokens on Linux).
    #[arg(long, env = "NETLAB_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub tls: ClientTlsArgs,
    #[arg(skip)]
    pub host_given: bool,
    #[arg(skip)]
    pub port_given: bool,
}

/// How a client speaks TLS: `netlab connect` and `netlab bench`.
#[derive(Debug, Args, Clone)]
pub struct ClientTlsArgs {
    /// Speak TLS. The server's certificate is trusted on first use, as ssh does: recorded
    /// in --known-hosts the first time, refused if it ever changes.
    #[arg(long, env = "NETLAB_TLS")]
    pub tls: bool,
    /// Trust the certificates these CAs signed (PEM), for the --host name, as a browser
    /// does, instead of trusting on first use.
    #[arg(
        long,
        env = "NETLAB_TLS_CA",
        value_name = "PATH",
        requires = "tls",
        conflicts_with = "tls_pin"
    )]
    pub tls_ca: Option<PathBuf>,
    /// Trust exactly the certificate with this fingerprint (sha256:HEX, as `netlab tls
    /// fingerprint` prints it).
    #[arg(long, env = "NETLAB_TLS_PIN", value_name = "FINGERPRINT", requires = "tls",
          value_parser = crate::client::trust::parse_pin)]
    pub tls_pin: Option<String>,
    /// Where certificates trusted on first use are recorded. Default: the user's state
    /// directory (~/.local/state/netlab/known_hosts on Linux).
    #[arg(long, env = "NETLAB_KNOWN_HOSTS", value_name = "PATH")]
    pub known_hosts: Option<PathBuf>,
}

impl ClientTlsArgs {
    /// How the server's certificate is judged; `None` without --tls.
    pub fn trust(&self) -> anyhow::Result<Option<Trust>> {
        if !self.tls {
            return Ok(None);
        }
        Ok(Some(match (&self.tls_ca, &self.tls_pin) {
            (Some(ca), _) => Trust::Ca(ca.clone()),
            (_, Some(pin)) => Trust::Pin(pin.clone()),
            _ => Trust::FirstUse(match &self.known_hosts {
                Some(path) => path.clone(),
                None => crate::client::trust::default_known_hosts()?,
            }),
        }))
    }
}

impl Cli {
    /// Parses the command line (exiting with status 2 on a usage error) and records which
    /// of host and port the user gave.
    pub fn parse_and_mark() -> Cli {
        let args: Vec<OsString> = std::env::args_os().collect();
        let matches = Cli::command()
            .try_get_matches_from(&args)
            .unwrap_or_else(|mut e| {
                name_the_variable(&mut e, &args, |name| std::env::var_os(name).is_some());
                e.exit()
            });
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let leaf = innermost(&matches);
        let given = |id: &str| {
            leaf.value_source(id)
                .is_some_and(|s| s != ValueSource::DefaultValue)
        };
        match &mut cli.command {
            Command::Serve { mode } => mode.server_args_mut().port_given = given("port"),
            Command::Connect(args) => {
                args.host_given = given("host");
                args.port_given = given("port");
            }
            Command::Clients { .. }
            | Command::Bench(_)
            | Command::Check(_)
            | Command::Users { .. }
            | Command::Sessions { .. }
            | Command::Tls { .. }
            | Command::Completions { .. } => {}
        }
        cli
    }
}

/// A bad value that came from an environment variable is reported under the
/// variable's name: the user never typed the flag clap would name.
fn name_the_variable(e: &mut clap::Error, args: &[OsString], is_set: impl Fn(&str) -> bool) {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return;
    }
    let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg) else {
        return;
    };
    // `--port <PORT>`
    let Some(long) = shown
        .strip_prefix("--")
        .and_then(|rest| rest.split([' ', '=']).next())
    else {
        return;
    };
    let Some(arg) = find_long(&Cli::command(), long) else {
        return;
    };
    let Some(variable) = arg.get_env().and_then(|v| v.to_str()) else {
        return;
    };
    let typed = args.iter().skip(1).filter_map(|a| a.to_str()).any(|a| {
        a == format!("--{long}")
            || a.starts_with(&format!("--{long}="))
            || arg
                .get_short()
                .is_some_and(|c| a.starts_with(&format!("-{c}")) && !a.starts_with("--"))
    });
    if !typed && is_set(variable) {
        let named = format!("{variable} (the environment variable for {shown})");
        e.insert(ContextKind::InvalidArg, ContextValue::String(named));
    }
}

/// The option `--long` of any subcommand.
fn find_long(command: &clap::Command, long: &str) -> Option<clap::Arg> {
    command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .cloned()
        .or_else(|| {
            command
                .get_subcommands()
                .find_map(|sub| find_long(sub, long))
        })
}

fn innermost(matches: &ArgMatches) -> &ArgMatches {
    match matches.subcommand() {
        Some((_, sub)) => innermost(sub),
        None => matches,
    }
}

/// An IP address, or a host name made of letters, digits, hyphens and dots (RFC 1123).
/// Whether a name resolves is checked when it is used.
pub fn parse_host(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.parse::<IpAddr>().is_ok() {
        return Ok(s.to_owned());
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is neither an IP address nor a valid host name"
        ))
    }
}

/// Messages the server itself sends (notices of up to about 150 bytes) must fit, and no
/// peer may make a connection hold more than 64 MiB.
fn max_frame_parser() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(256..=64 * 1024 * 1024)
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be longer than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (examples: 500ms, 10s, 5m)")),
    }
}

impl ServerArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_frame: to_usize(self.max_frame),
            idle_timeout: self.idle_timeout,
            frame_timeout: self.frame_timeout,
        }
    }

    /// The accept loop's settings; `per_address` is the mode's default cap.
    pub fn server_config(&self, per_address: Option<u32>) -> ServerConfig {
        let cap = match self.max_per_address.or(per_address) {
            None | Some(0) => None,
            Some(n) => Some(n as usize),
        };
        ServerConfig {
            max_connections: self.max_connections as usize,
            max_per_source: cap,
            ..ServerConfig::default()
        }
    }

    /// The certificate and key to present, with --tls: the given ones, or the generated.
    pub fn tls_identity(&self) -> anyhow::Result<Option<Identity>> {
        if !self.tls {
            return Ok(None);
        }
        let identity = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Identity::from_files(cert, key)?,
            _ => Identity::generated(&tls::default_dir()?, &self.host)?,
        };
        Ok(Some(identity))
    }
}

impl ConnectArgs {
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        Ok(ClientConfig {
            host: self.host.clone(),
            port: self.port,
            codec: self.codec,
            max_frame: to_usize(self.max_frame),
            bind: self.bind,
            token_file: self.token_file.clone(),
            greeting_timeout: self.greeting_timeout,
            reply_timeout: self.reply_timeout,
            tls: self.tls.trust()?,
        })
    }
}

/// The parsers above cap sizes at 64 MiB, which fits any usize netlab runs on.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).expect("validated by the argument parser")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_bad_value_from_the_environment_names_the_variable() {
        let render = |argv: &[&str], set: bool| {
            let args: Vec<OsString> = argv.iter().map(OsString::from).collect();
            let mut e = Cli::command()
                .try_get_matches_from(&args)
                .expect_err("a bad port");
            name_the_variable(&mut e, &args, |name| set && name == "NETLAB_PORT");
            e.render().to_string()
        };
        let from_env = render(&["netlab", "connect", "--port", "abc"], true);
        assert!(from_env.contains("'--port <PORT>'"), "typed: {from_env}");
        let from_env = render(&["netlab", "connect", "-p", "abc"], true);
        assert!(!from_env.contains("NETLAB_PORT ("), "typed: {from_env}");
        let unset = render(&["netlab", "connect", "--port=abc"], false);
        assert!(!unset.contains("NETLAB_PORT ("), "{unset}");
    }

    /// The README promises it: each option can also come from the environment.
    #[test]
    fn every_option_has_an_environment_variable() {
        fn check(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if arg.get_long().is_some() && !builtin && arg.get_env().is_none() {
                    missing.push(format!("{path} --{}", arg.get_long().unwrap_or_default()));
                }
            }
            for sub in command.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let mut cli = Cli::command();
        cli.build();
        check(&cli, "netlab", &mut missing);
        assert!(missing.is_empty(), "no environment variable: {missing:?}");
    }

    #[test]
    fn hosts_are_addresses_or_well_formed_names() {
        for good in [
            "127.0.0.1",
            "::1",
            "localhost",
            "lab-3.example.org",
            "example.org.",
        ] {
            assert_eq!(parse_host(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "",
            "-x.org",
            "a..b",
            "host name",
            "hôte",
            "1.2.3.4:80",
            &"a".repeat(64),
        ] {
            assert!(parse_host(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn timeouts_take_units_and_refuse_zero() {
        assert_eq!(parse_timeout("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_timeout("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("soon").is_err());
    }
}
