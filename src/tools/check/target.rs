//! A server the checker starts itself (`--exec`): a student's program, run in its own
//! directory, its prompts answered, its port found, and stopped at the end.
//!
//! Invariant: a started server never outlives the checker. It runs in its own process
//! group, which is sent SIGTERM and then SIGKILL when the checker is done with it, on
//! every path out (the value's `Drop`); and the kernel kills it if the checker itself is
//! killed (`PR_SET_PDEATHSIG`).
//!
//! The port is whatever number the server prints that then accepts a connection; or
//! `--port`, or the free port the checker chose for `{port}` in the command or its input.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Lines of a server's output kept for its port and for the report of its death.
const KEPT_LINES: usize = 200;
/// Longest line kept, in bytes.
const LINE_MAX: usize = 512;
/// Numbers of the newest output tried as ports each round: a server that prints a
/// counter must not make each round a port scan.
const MAX_CANDIDATES: usize = 20;
/// How long a server has after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// How `--exec` starts servers: the same for every target.
#[derive(Clone, Debug)]
pub struct Exec {
    /// The command, `{}` for the target and `{port}` for the port.
    pub command: String,
    /// `--exec-stdin`, `{port}` for the port.
    pub stdin: Option<String>,
    /// `--port`.
    pub port: Option<u16>,
    /// The address servers are reached at.
    pub ip: IpAddr,
    /// How long a server has to start listening.
    pub start_timeout: Duration,
}

/// How to start one target's server.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The command, split into words, with `{}` and `{port}` already replaced.
    pub argv: Vec<String>,
    /// Where it runs: the target's directory.
    pub dir: PathBuf,
    /// Typed into the server's standard input, then closed.
    pub stdin: Option<String>,
    /// The port it should listen on, when known (--port, or `{port}`).
    pub port: Option<u16>,
    /// The address its port is reached at.
    pub ip: IpAddr,
    /// How long it has to start listening.
    pub start_timeout: Duration,
}

impl Launch {
    /// The launch of `exec` for `target` (none: the command alone). Without --port, a
    /// `{port}` in the command or input gets a free port.
    pub fn new(exec: &Exec, target: Option<&Path>) -> Result<Launch, String> {
        let (command, stdin, ip) = (exec.command.as_str(), exec.stdin.as_deref(), exec.ip);
        let words = split_words(command)?;
        if words.is_empty() {
            return Err("--exec: the command is empty".into());
        }
        let wants_port = command.contains("{port}") || stdin.is_some_and(|s| s.contains("{port}"));
        let port = match exec.port {
            Some(p) => Some(p),
            None if wants_port => Some(free_port(ip)?),
            None => None,
        };
        let (path, dir) = match target {
            Some(t) => {
                let path = t
                    .canonicalize()
                    .map_err(|e| format!("{}: {e}", t.display()))?;
                let dir = if path.is_dir() {
                    path.clone()
                } else {
                    path.parent().map(Path::to_path_buf).unwrap_or_default()
                };
                (path.to_string_lossy().into_owned(), dir)
            }
            None => (
                String::new(),
                std::env::current_dir().map_err(|e| e.to_string())?,
            ),
        };
        let fill = |s: &str| {
            let s = s.replace("{}", &path);
            match port {
                Some(p) => s.replace("{port}", &p.to_string()),
                None => s,
            }
        };
        let stdin = stdin.map(|s| {
            let mut s = fill(s);
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s
        });
        Ok(Launch {
            argv: words.iter().map(|w| fill(w)).collect(),
            dir,
            stdin,
            port,
            ip,
            start_timeout: exec.start_timeout,
        })
    }
}

/// A running server and what it printed.
pub struct Managed {
    pub launch: Launch,
    child: Option<Child>,
    output: Arc<Mutex<Output>>,
    /// The port it listens on.
    pub port: u16,
}

#[derive(Default)]
struct Output {
    lines: VecDeque<String>,
    /// The line being written (a prompt has no newline).
    partial: Vec<u8>,
}

impl Output {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&self.partial).trim_end().to_owned();
                self.partial.clear();
                if self.lines.len() == KEPT_LINES {
                    self.lines.pop_front();
                }
                self.lines.push_back(line);
            } else if self.partial.len() < LINE_MAX {
                self.partial.push(b);
            }
        }
    }

    /// Every line, the newest first, the unfinished one before all.
    fn newest_first(&self) -> Vec<String> {
        let partial = String::from_utf8_lossy(&self.partial).into_owned();
        std::iter::once(partial)
            .chain(self.lines.iter().rev().cloned())
            .collect()
    }
}

impl Managed {
    /// Starts the server and waits until it listens.
    pub fn start(launch: Launch) -> Result<Managed, String> {
        let mut managed = Managed {
            launch,
            child: None,
            output: Arc::default(),
            port: 0,
        };
        managed.port = managed.spawn(None)?;
        Ok(managed)
    }

    /// Stops the server, starts it again and waits until it listens.
    pub fn restart(&mut self) -> Result<u16, String> {
        self.stop();
        self.port = self.spawn(None)?;
        Ok(self.port)
    }

    /// Starts the stopped server with `taken` held by the checker, so that the server
    /// must move; the port it moved to. The server is left stopped.
    pub fn start_elsewhere(&mut self, taken: u16) -> Result<u16, String> {
        self.stop();
        let moved = self.spawn(Some(taken));
        self.stop();
        moved
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.launch.ip, self.port)
    }

    /// How the server ended, if it has: its status and its last words.
    pub fn exited(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        Some(format!("{status}{}", self.last_words()))
    }

    /// Stops the server: SIGTERM to its process group, SIGKILL after the grace period.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = child.id() as libc::pid_t;
        // SAFETY: kill only sends a signal; the group is the one this value started.
        unsafe { libc::kill(-group, libc::SIGTERM) };
        let until = Instant::now() + GRACE;
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the group, the leader included.
        // SAFETY: as above.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = child.wait();
    }

    /// The server's last line of output, as ", last line: ...", or nothing.
    fn last_words(&self) -> String {
        let output = self.output.lock().unwrap_or_else(|e| e.into_inner());
        match output
            .newest_first()
            .into_iter()
            .find(|l| !l.trim().is_empty())
        {
            Some(line) => format!(", last line: {}", crate::text::escape_unsafe(line.trim())),
            None => String::new(),
        }
    }

    /// Starts the process and finds its port, never `avoid`.
    fn spawn(&mut self, avoid: Option<u16>) -> Result<u16, String> {
        let launch = &self.launch;
        let mut command = Command::new(&launch.argv[0]);
        command
            .args(&launch.argv[1..])
            .current_dir(&launch.dir)
            // Python buffers print() into a pipe: the port would never be seen.
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches only the new process.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("could not run {}: {e}", launch.argv[0]))?;
        self.output = Arc::default();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = Arc::clone(&self.output);
            thread::spawn(move || collect(pipe, output));
        }
        if let Some(mut stdin) = child.stdin.take() {
            // Written and closed: a server that asks more than it was given reads EOF
            // rather than waiting forever. A server that never reads it is no error.
            let _ = stdin.write_all(launch.stdin.as_deref().unwrap_or("").as_bytes());
        }
        self.child = Some(child);
        self.find_port(avoid)
    }

    fn find_port(&mut self, avoid: Option<u16>) -> Result<u16, String> {
        let until = Instant::now() + self.launch.start_timeout;
        loop {
            let mut candidates = Vec::new();
            {
                let output = self.output.lock().unwrap_or_else(|e| e.into_inner());
                for line in output.newest_first() {
                    candidates.extend(ports_in(&line).into_iter().rev());
                }
            }
            candidates.truncate(MAX_CANDIDATES);
            candidates.extend(self.launch.port);
            let mut seen = Vec::new();
            for port in candidates {
                if Some(port) == avoid || seen.contains(&port) {
                    continue;
                }
                seen.push(port);
                let addr = SocketAddr::new(self.launch.ip, port);
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Ok(port);
                }
            }
            if let Some(how) = self.exited() {
                return Err(format!("exited before listening ({how})"));
            }
            if Instant::now() >= until {
                let said = match avoid {
                    Some(p) => format!(" on a port other than {p}"),
                    None => String::new(),
                };
                return Err(format!(
                    "not listening{said} after {} s, or did not say on which port{}",
                    self.launch.start_timeout.as_secs(),
                    self.last_words()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.stop();
    }
}

fn collect(mut pipe: Box<dyn Read + Send>, output: Arc<Mutex<Output>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            break;
        }
        output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(&buf[..n]);
    }
}

/// The numbers in `line` that could be ports, in order: runs of digits from 1 to 65535
/// that are not part of a dotted address or a decimal (127.0.0.1, 3.5).
pub fn ports_in(line: &str) -> Vec<u16> {
    let bytes = line.as_bytes();
    let mut ports = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let dotted_before = start > 0 && bytes[start - 1] == b'.';
        let dotted_after = i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit();
        if dotted_before || dotted_after {
            continue;
        }
        if let Ok(port) = line[start..i].parse::<u16>()
            && port > 0
        {
            ports.push(port);
        }
    }
    ports
}

/// A port free on `ip` now, for `{port}`.
fn free_port(ip: IpAddr) -> Result<u16, String> {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("could not find a free port: {e}"))
}

/// `command` split into words as a shell would, without running one: spaces separate,
/// quotes ('...' and "...") and backslashes keep. A shell runs only when the command
/// names one (`sh -c '...'`).
pub fn split_words(command: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(format!("unclosed ' in {command:?}")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(format!("unclosed \" in {command:?}")),
                        },
                        Some(c) => w.push(c),
                        None => return Err(format!("unclosed \" in {command:?}")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(format!("a trailing \\ in {command:?}")),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell_without_one() {
        assert_eq!(split_words("python3 {}").unwrap(), ["python3", "{}"]);
        assert_eq!(
            split_words(r#"sh -c 'exec python3 "$0"' {} a\ b "x\"y" ''"#).unwrap(),
            ["sh", "-c", "exec python3 \"$0\"", "{}", "a b", "x\"y", ""]
        );
        assert!(split_words("python3 'open").is_err());
        assert!(split_words("a\\").is_err());
    }

    #[test]
    fn ports_are_numbers_that_are_not_addresses_or_decimals() {
        assert_eq!(ports_in("listening on 127.0.0.1:33817"), [33817]);
        assert_eq!(ports_in("Port 9090 busy, moved to 9091"), [9090, 9091]);
        assert_eq!(
            ports_in("Python 3.11, 70000 clients, port 0"),
            Vec::<u16>::new()
        );
        assert_eq!(ports_in("[::1]:8080"), [1, 8080]);
    }

    #[test]
    fn output_keeps_the_last_lines_and_the_unfinished_one() {
        let mut out = Output::default();
        for i in 0..KEPT_LINES + 5 {
            out.push(format!("line {i}\n").as_bytes());
        }
        out.push(b"Port: ");
        let lines = out.newest_first();
        assert_eq!(lines[0], "Port: ");
        assert_eq!(lines[1], format!("line {}", KEPT_LINES + 4));
        assert_eq!(lines.len(), KEPT_LINES + 1);
        out.push(&vec![b'x'; 10_000]);
        assert_eq!(out.newest_first()[0].len(), LINE_MAX);
    }

    fn exec(command: &str, stdin: Option<&str>, port: Option<u16>) -> Exec {
        Exec {
            command: command.into(),
            stdin: stdin.map(Into::into),
            port,
            ip: IpAddr::from([127, 0, 0, 1]),
            start_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_launch_fills_in_the_target_and_a_free_port() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.py");
        std::fs::write(&file, "").unwrap();
        let launch = Launch::new(&exec("python3 {}", Some("{port}"), None), Some(&file)).unwrap();
        assert_eq!(
            launch.argv[1],
            file.canonicalize().unwrap().to_string_lossy()
        );
        assert_eq!(launch.dir, dir.path().canonicalize().unwrap());
        let port = launch.port.expect("a free port for {port}");
        assert_eq!(launch.stdin.as_deref(), Some(format!("{port}\n").as_str()));
    }

    #[test]
    fn a_directory_target_is_where_its_command_runs() {
        let class = tempfile::tempdir().unwrap();
        let alice = class.path().join("alice");
        std::fs::create_dir(&alice).unwrap();
        let launch =
            Launch::new(&exec("python3 server.py", None, Some(9090)), Some(&alice)).unwrap();
        assert_eq!(launch.argv, ["python3", "server.py"]);
        assert_eq!(launch.dir, alice.canonicalize().unwrap());
        assert_eq!(
            launch.port,
            Some(9090),
            "--port is kept, not replaced by a free one"
        );
        assert_eq!(launch.stdin, None);
    }
}
