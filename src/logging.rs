//! Where diagnostics go (lab task 5).
//!
//! Servers write service messages to a log file through log4rs, configured by a
//! log4rs.yaml file (`--log-config`) or, without one, by the built-in equivalent: a
//! rolling file in the user's data directory. Several servers may share one file, so
//! every message starts with the server's name, `[MODE HOST:PORT]` ([`name_server`]).
//! Their console shows only the `listening on` line, where the log is, a port move and
//! fatal errors. The client and the admin commands are not services: they report to
//! stderr through env_logger, quiet unless RUST_LOG asks.
//!
//! Invariant: a server's log is its owner's alone. The server sets umask 077 before
//! calling [`init_server`], so the log file, its rolled copies and its directory are
//! created 0600 and 0700 whatever the configuration says, and an existing log file that
//! others can read is refused; and text a client chose is
//! logged with `{:?}`, which escapes control characters, so no client can forge a log
//! line.

use std::collections::HashMap;
use std::fs;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use log::{LevelFilter, Log, Metadata, Record};
use log4rs::append::rolling_file::RollingFileAppender;
use log4rs::append::rolling_file::policy::compound::CompoundPolicy;
use log4rs::append::rolling_file::policy::compound::roll::fixed_window::FixedWindowRoller;
use log4rs::append::rolling_file::policy::compound::trigger::size::SizeTrigger;
use log4rs::config::{Appender, Config, Deserializers, RawConfig, Root};
use log4rs::encode::pattern::PatternEncoder;

use crate::private_file;

/// One line per event: time, level, message.
pub const PATTERN: &str = "{d(%Y-%m-%dT%H:%M:%S%.3f%:z)} {l:<5} {m}{n}";
/// The built-in log rolls over at this size and keeps this many old files.
const ROLL_SIZE: u64 = 10 * 1024 * 1024;
const ROLL_KEEP: u32 = 5;

/// Sets up a server's log: from `config` if given, else the built-in configuration.
/// Its messages start with `[name]` until [`name_server`] says more. Returns where the
/// log goes, for the console.
pub fn init_server(config: Option<&Path>, name: &str) -> anyhow::Result<String> {
    let (config, place) = match config {
        Some(path) => {
            let text = fs::read_to_string(path).with_context(|| {
                format!("could not read the log configuration {}", path.display())
            })?;
            let files = log_files(&text);
            private_file::refuse_exposed("the log file", files.iter().map(PathBuf::as_path))?;
            let place = match files.as_slice() {
                [] => format!("as {} says", path.display()),
                files => {
                    let files: Vec<_> = files.iter().map(|f| f.display().to_string()).collect();
                    files.join(", ")
                }
            };
            (parse(path, &text)?, place)
        }
        None => {
            let file = default_log_file()?;
            private_file::refuse_exposed("the log file", [file.as_path()])?;
            (built_in(&file)?, file.display().to_string())
        }
    };
    name_server(name);
    let logger = log4rs::Logger::new(config);
    let level = logger.max_log_level();
    log::set_boxed_logger(Box::new(Named(logger))).context("could not start logging")?;
    log::set_max_level(level);
    Ok(place)
}

/// The name in front of every service-log message: the mode until the server has
/// bound, then `MODE HOST:PORT`.
static SERVER_NAME: RwLock<String> = RwLock::new(String::new());

/// Names the server in every log message from now on.
pub fn name_server(name: &str) {
    let mut current = SERVER_NAME.write().unwrap_or_else(|p| p.into_inner());
    name.clone_into(&mut current);
}

/// A logger that puts the server's name in front of each message, whatever the
/// configuration's pattern: a shared log file stays readable with any log4rs.yaml.
struct Named<L>(L);

impl<L: Log> Log for Named<L> {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !self.0.enabled(record.metadata()) {
            return;
        }
        let name = SERVER_NAME.read().unwrap_or_else(|p| p.into_inner());
        self.0.log(
            &Record::builder()
                .metadata(record.metadata().clone())
                .args(format_args!("[{}] {}", name, record.args()))
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Lets an event be logged at most once per key (a source address, say) per interval:
/// for what a client can repeat at will, so that it cannot flood the log.
///
/// It remembers at most [`Throttle::MAX_KEYS`] keys; when that many have logged within
/// the interval, further new keys are not logged until some expire.
pub struct Throttle<K> {
    every: Duration,
    last: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq> Throttle<K> {
    pub const MAX_KEYS: usize = 4096;

    pub fn new(every: Duration) -> Self {
        Throttle {
            every,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an event for `key` may be logged now.
    pub fn allow(&self, key: K) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = last.get_mut(&key) {
            if now.duration_since(*at) < self.every {
                return false;
            }
            *at = now;
            return true;
        }
        if last.len() >= Self::MAX_KEYS {
            last.retain(|_, at| now.duration_since(*at) < self.every);
            if last.len() >= Self::MAX_KEYS {
                return false;
            }
        }
        last.insert(key, now);
        true
    }
}

/// Sets up stderr diagnostics for the client and admin commands.
pub fn init_tool() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .target(env_logger::Target::Stderr)
        .init();
}

/// `<data dir>/netlab/netlab.log`, e.g. ~/.local/share/netlab/netlab.log on Linux.
pub fn default_log_file() -> anyhow::Result<PathBuf> {
    let Some(data) = dirs::data_dir() else {
        bail!(
            "no data directory for this user (is HOME set?); name a log4rs.yaml with --log-config"
        );
    };
    Ok(data.join("netlab").join("netlab.log"))
}

/// The built-in configuration: what log4rs.yaml says, with the file in `file`.
pub fn built_in(file: &Path) -> anyhow::Result<Config> {
    let rolled = file.with_extension("{}.log");
    let roller = FixedWindowRoller::builder()
        .build(&rolled.to_string_lossy(), ROLL_KEEP)
        .context("bad pattern for rolled log files")?;
    let policy = CompoundPolicy::new(Box::new(SizeTrigger::new(ROLL_SIZE)), Box::new(roller));
    let appender = RollingFileAppender::builder()
        .encoder(Box::new(PatternEncoder::new(PATTERN)))
        .build(file, Box::new(policy))
        .with_context(|| format!("could not open the log file {}", file.display()))?;
    Ok(Config::builder()
        .appender(Appender::builder().build("file", Box::new(appender)))
        .build(Root::builder().appender("file").build(LevelFilter::Info))?)
}

/// Reads a log4rs YAML configuration strictly: log4rs's own loader drops an appender it
/// cannot build (an unwritable path, say) with a note on stderr and carries on, which
/// would leave a server running with no log at all.
pub fn from_file(path: &Path) -> anyhow::Result<Config> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("could not read the log configuration {}", path.display()))?;
    parse(path, &text)
}

/// The files a log4rs configuration writes to: each appender's `path`. A file that does
/// not parse names none; [`parse`] reports it.
fn log_files(yaml: &str) -> Vec<PathBuf> {
    let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(yaml) else {
        return Vec::new();
    };
    let Some(appenders) = value.get("appenders").and_then(|a| a.as_mapping()) else {
        return Vec::new();
    };
    appenders
        .values()
        .filter_map(|appender| appender.get("path")?.as_str())
        .map(PathBuf::from)
        .collect()
}

/// Opens (creating it and its directory if need be) a log file, as its appender will.
fn open_for_append(file: &Path) -> anyhow::Result<()> {
    let could_not = || format!("could not open the log file {}", file.display());
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(could_not)?;
    }
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .with_context(could_not)?;
    Ok(())
}

fn parse(path: &Path, text: &str) -> anyhow::Result<Config> {
    let raw: RawConfig = serde_yaml::from_str(text)
        .with_context(|| format!("{} is not a valid log4rs configuration", path.display()))?;
    // The usual reason an appender cannot be built, said plainly.
    for file in log_files(text) {
        open_for_append(&file)?;
    }
    let (appenders, errors) = raw.appenders_lossy(&Deserializers::default());
    if !errors.is_empty() {
        // Said here, on one line, rather than by `errors.handle()`, which prints to
        // stderr itself and leaves the caller with nothing to report.
        let errors = errors.to_string();
        let errors: Vec<&str> = errors.split_whitespace().collect();
        bail!(
            "the log configuration {} has {}",
            path.display(),
            errors.join(" ")
        );
    }
    Config::builder()
        .appenders(appenders)
        .loggers(raw.loggers())
        .build(raw.root())
        .with_context(|| format!("the log configuration {} is inconsistent", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_log4rs_yaml_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("log4rs.yaml");
        let dir = tempfile::tempdir().unwrap();
        // Its paths are relative to the working directory: check it from a scratch one.
        let text = fs::read_to_string(&path).unwrap();
        let local = dir.path().join("log4rs.yaml");
        fs::write(
            &local,
            text.replace("logs/", &format!("{}/logs/", dir.path().display())),
        )
        .unwrap();
        from_file(&local).unwrap();
    }

    #[test]
    fn a_broken_appender_is_an_error_not_a_silent_loss() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("bad.yaml");
        fs::write(
            &yaml,
            "appenders:\n  file:\n    kind: file\n    path: /proc/no/such/dir/x.log\n\
             root:\n  level: info\n  appenders: [file]\n",
        )
        .unwrap();
        let err = format!("{:#}", from_file(&yaml).unwrap_err());
        assert!(
            err.starts_with("could not open the log file /proc/no/such/dir/x.log: "),
            "{err}"
        );
    }

    #[test]
    fn an_appender_that_cannot_be_built_is_reported_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("kind.yaml");
        fs::write(
            &yaml,
            "appenders:\n  out:\n    kind: no_such_kind\nroot:\n  appenders: [out]\n",
        )
        .unwrap();
        let err = format!("{:#}", from_file(&yaml).unwrap_err());
        assert!(err.contains("has errors deserializing appenders"), "{err}");
        assert!(err.contains("no_such_kind"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn the_files_a_configuration_writes_are_found() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("log4rs.yaml");
        let files = log_files(&fs::read_to_string(path).unwrap());
        assert_eq!(files, [PathBuf::from("logs/netlab.log")]);
        assert!(log_files("not: [yaml").is_empty());
    }

    #[test]
    fn a_throttle_lets_each_key_through_once_per_interval() {
        let throttle = Throttle::new(Duration::from_millis(50));
        assert!(throttle.allow("a"));
        assert!(!throttle.allow("a"));
        assert!(throttle.allow("b"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(throttle.allow("a"));
        assert!(!throttle.allow("a"));
    }

    #[test]
    fn a_throttle_remembers_a_bounded_number_of_keys() {
        let throttle = Throttle::new(Duration::from_secs(60));
        for key in 0..Throttle::<usize>::MAX_KEYS {
            assert!(throttle.allow(key));
        }
        assert!(!throttle.allow(usize::MAX), "full: a new key waits");
        assert_eq!(
            throttle.last.lock().unwrap().len(),
            Throttle::<usize>::MAX_KEYS
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("typo.yaml");
        fs::write(&yaml, "apenders: {}\nroot:\n  level: info\n").unwrap();
        assert!(from_file(&yaml).is_err());
    }

    #[test]
    fn built_in_config_builds_in_a_fresh_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nested").join("netlab.log");
        built_in(&file).unwrap();
        assert!(file.exists());
    }
}
