//! Program plugins (`netlab serve exec -- PROGRAM [ARGS...]`): any program that reads
//! and writes lines is a mode.
//!
//! Invariant: a connection's program lives exactly as long as its conversation. It is
//! started, in a process group of its own, when the client connects, and the whole group
//! is ended (SIGTERM, then SIGKILL after [`GRACE`]) however the conversation ends; at
//! the server's stop every group still there is killed ([`end_all`]). Nothing it does can
//! grow the server's memory: its lines are bounded like messages, its stderr is logged up
//! to [`MAX_STDERR`] per connection, and a program that stops reading or writing is given
//! up on after the plugin timeout.
//!
//! The line format: each message is one line on the program's stdin, each line the
//! program writes on stdout is one message back; a message's own backslashes and
//! newlines travel as `\\` and `\n` (docs/PROTOCOL.md, section 6).

use std::collections::{BTreeSet, VecDeque};
use std::ffi::OsString;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use log::{info, warn};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::timeout;

use super::{Handler, Peer, Reply};

/// How long a program has to end after SIGTERM before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(2);
/// Bytes of a program's stderr logged per connection; the rest is read and dropped.
pub const MAX_STDERR: usize = 64 * 1024;
/// Lines of stderr kept to explain a crash.
const STDERR_TAIL: usize = 5;

pub const NO_ANSWER: &str = "error: the service did not answer; closing the connection";
pub const CRASHED: &str = "error: the service ended unexpectedly; closing the connection";
pub const ENDED: &str = "the service has ended; goodbye";
pub const TOO_LONG: &str =
    "error: the service sent a message over the maximum; closing the connection";

/// What to run for each connection, and how.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Longest wait for the greeting, for each answer, and for each write to the program.
    pub timeout: Duration,
    /// Variables passed on from netlab's environment, besides PATH, LANG and HOME.
    pub pass_env: Vec<String>,
    /// Longest line either way, in bytes: the server's --max-frame.
    pub max_line: usize,
}

/// `program` as a path: as given when it has a slash, else found in PATH, once, at
/// start-up. A missing program is an error before the server listens rather than at
/// every connection; and a spawn without a PATH search can use posix_spawn instead of
/// fork, which copied the server's page tables for every connection (measured: 3.5 ms
/// of server CPU per connection before, see scripts/plugin_bench.py).
pub fn find_program(program: &std::ffi::OsStr) -> anyhow::Result<OsString> {
    use std::os::unix::fs::PermissionsExt;
    let is_executable = |path: &std::path::Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if std::path::Path::new(program).components().count() > 1 {
        if is_executable(std::path::Path::new(program)) {
            return Ok(program.to_owned());
        }
        anyhow::bail!("{} is not an executable file", program.to_string_lossy());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .map(|found| found.into_os_string())
        .ok_or_else(|| anyhow::anyhow!("{} was not found in PATH", program.to_string_lossy()))
}

/// `serve exec`: the conversation is the program's.
pub struct Exec {
    config: Arc<ExecConfig>,
}

impl Exec {
    pub fn new(config: ExecConfig) -> Exec {
        Exec {
            config: Arc::new(config),
        }
    }
}

impl Handler for Exec {
    type State = Option<Plugin>;

    async fn greet(&self, peer: &Peer) -> anyhow::Result<(Option<Plugin>, Reply)> {
        let mut plugin = match Plugin::start(&self.config, peer, "exec", &[]) {
            Ok(plugin) => plugin,
            Err(e) => {
                warn!(
                    "{}: could not start {:?}: {e}",
                    peer.addr, self.config.program
                );
                return Ok((None, Reply::close(CRASHED)));
            }
        };
        let reply = plugin.next_reply().await;
        Ok((Some(plugin), reply))
    }

    async fn reply(&self, plugin: &mut Option<Plugin>, message: String) -> anyhow::Result<Reply> {
        let Some(plugin) = plugin else {
            return Ok(Reply::close(CRASHED));
        };
        Ok(plugin.answer(&message).await)
    }

    async fn ended(&self, plugin: &mut Option<Plugin>) -> Reply {
        match plugin {
            Some(plugin) => plugin.exited().await,
            None => std::future::pending().await,
        }
    }
}

/// One connection's program.
pub struct Plugin {
    child: Child,
    pgid: i32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    config: Arc<ExecConfig>,
    peer: std::net::SocketAddr,
}

impl Plugin {
    /// Starts the program for `peer`, with a cleared environment and `extra` variables.
    pub fn start(
        config: &Arc<ExecConfig>,
        peer: &Peer,
        mode: &str,
        extra: &[(&str, &str)],
    ) -> std::io::Result<Plugin> {
        let mut cmd = Command::new(&config.program);
        cmd.args(&config.args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for name in ["PATH", "LANG", "HOME"]
            .into_iter()
            .chain(config.pass_env.iter().map(String::as_str))
        {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        cmd.env("NETLAB_PEER_IP", peer.addr.ip().to_canonical().to_string())
            .env("NETLAB_PEER_PORT", peer.addr.port().to_string())
            .env("NETLAB_LOCAL_PORT", peer.local_port.to_string())
            .env("NETLAB_MODE", mode);
        for (name, value) in extra {
            cmd.env(name, value);
        }
        let mut child = cmd.spawn()?;
        let pgid = child.id().map_or(0, |id| id as i32);
        LIVE.lock().unwrap_or_else(|p| p.into_inner()).insert(pgid);
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let stderr = child.stderr.take().expect("piped");
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(log_stderr(stderr, peer.addr, Arc::clone(&stderr_tail)));
        Ok(Plugin {
            child,
            pgid,
            stdin,
            stdout,
            stderr_tail,
            config: Arc::clone(config),
            peer: peer.addr,
        })
    }

    /// Sends `message` and returns the program's answer.
    pub async fn answer(&mut self, message: &str) -> Reply {
        let mut line = escape(message).into_bytes();
        line.push(b'\n');
        match timeout(self.config.timeout, self.stdin.write_all(&line)).await {
            Ok(Ok(())) => {}
            // It stopped reading: its end, or its crash, is what the client learns.
            Ok(Err(_)) => return self.ended().await,
            Err(_) => {
                warn!(
                    "{}: the program read nothing for {}",
                    self.peer,
                    self.timeout_text()
                );
                return Reply::close(NO_ANSWER);
            }
        }
        self.next_reply().await
    }

    /// The program's next line, as the reply; or why there is none.
    pub async fn next_reply(&mut self) -> Reply {
        let read = timeout(
            self.config.timeout,
            read_line_bounded(&mut self.stdout, self.config.max_line),
        )
        .await;
        let line = match read {
            Err(_) => {
                warn!(
                    "{}: the program did not answer within {}",
                    self.peer,
                    self.timeout_text()
                );
                return Reply::close(NO_ANSWER);
            }
            Ok(Err(e)) => {
                warn!("{}: reading the program's output: {e}", self.peer);
                return Reply::close(TOO_LONG);
            }
            Ok(Ok(None)) => return self.ended().await,
            Ok(Ok(Some(line))) => line,
        };
        let Ok(text) = String::from_utf8(line) else {
            warn!("{}: the program wrote a line that is not UTF-8", self.peer);
            return Reply::close(CRASHED);
        };
        let text = unescape(&text);
        // Its last line: if the program has already ended, close with it rather than
        // wait for the next message to find out. (One poll, no waiting.)
        // (A zero timeout would not do: tokio's timer has a 1 ms grain, which every
        // message would wait for.)
        let stdout = &mut self.stdout;
        let at_end = std::future::poll_fn(|cx| {
            Poll::Ready(matches!(
                Pin::new(&mut *stdout).poll_fill_buf(cx),
                Poll::Ready(Ok(rest)) if rest.is_empty()
            ))
        })
        .await;
        if at_end {
            let reply = self.ended().await;
            if reply.text == ENDED {
                return Reply::close(text);
            }
            return reply;
        }
        Reply::say(text)
    }

    /// Waits for the program to exit between two messages (cancel safe), then gives its
    /// last line, if it left one unread, or says how it ended.
    pub async fn exited(&mut self) -> Reply {
        let _ = self.child.wait().await;
        match timeout(
            Duration::from_millis(100),
            read_line_bounded(&mut self.stdout, self.config.max_line),
        )
        .await
        {
            Ok(Ok(Some(line))) => match String::from_utf8(line) {
                Ok(text) => Reply::close(unescape(&text)),
                Err(_) => Reply::close(CRASHED),
            },
            _ => self.ended().await,
        }
    }

    /// The program closed its stdout: an ordinary end, or a crash.
    async fn ended(&mut self) -> Reply {
        let status = timeout(GRACE, self.child.wait()).await;
        match status {
            Ok(Ok(status)) if status.success() => {
                info!("{}: the program ended", self.peer);
                Reply::close(ENDED)
            }
            Ok(Ok(status)) => {
                self.report_crash(status);
                Reply::close(CRASHED)
            }
            _ => {
                warn!(
                    "{}: the program closed its output but did not exit",
                    self.peer
                );
                Reply::close(CRASHED)
            }
        }
    }

    fn report_crash(&self, status: ExitStatus) {
        let tail: Vec<String> = self
            .stderr_tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        warn!(
            "{}: the program ended with {status}; its last stderr lines: {tail:?}",
            self.peer
        );
    }

    fn timeout_text(&self) -> humantime::FormattedDuration {
        humantime::format_duration(self.config.timeout)
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        end_group(self.pgid);
    }
}

/// Process groups started and not yet known to be gone.
static LIVE: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// SIGTERM to the group now, SIGKILL after [`GRACE`] if it is still there.
fn end_group(pgid: i32) {
    if pgid <= 0 {
        return;
    }
    // SAFETY: killpg has no memory effects; a group already gone gives ESRCH.
    unsafe { libc::killpg(pgid, libc::SIGTERM) };
    let _ = reaper().send((pgid, std::time::Instant::now() + GRACE));
}

/// One thread for every pending SIGKILL, rather than a sleeping thread per connection
/// (at 869 connections/s that would be some 1,700 threads at any time). The grace is
/// the same for all, so the queue is already in deadline order.
fn reaper() -> &'static std::sync::mpsc::Sender<(i32, std::time::Instant)> {
    static REAPER: std::sync::OnceLock<std::sync::mpsc::Sender<(i32, std::time::Instant)>> =
        std::sync::OnceLock::new();
    REAPER.get_or_init(|| {
        let (queue, pending) = std::sync::mpsc::channel::<(i32, std::time::Instant)>();
        std::thread::spawn(move || {
            for (pgid, deadline) in pending {
                std::thread::sleep(deadline.saturating_duration_since(std::time::Instant::now()));
                if LIVE.lock().unwrap_or_else(|p| p.into_inner()).remove(&pgid) {
                    // SAFETY: as in end_group.
                    unsafe { libc::killpg(pgid, libc::SIGKILL) };
                }
            }
        });
        queue
    })
}

/// At the server's stop, after every conversation has ended (so every group has had its
/// SIGTERM): waits up to [`GRACE`] for the groups to go, then SIGKILLs what is left, so
/// that no program outlives the server.
pub fn end_all() {
    let mut groups = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|p| p.into_inner()));
    let started = std::time::Instant::now();
    loop {
        // SAFETY: signal 0 only asks whether the group still exists.
        groups.retain(|&pgid| unsafe { libc::killpg(pgid, 0) } == 0);
        if groups.is_empty() || started.elapsed() >= GRACE {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for pgid in groups {
        // SAFETY: as in end_group.
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
    }
}

/// Logs the program's stderr, escaped and with the peer's address, up to
/// [`MAX_STDERR`]; keeps reading (and dropping) the rest so that the program never
/// blocks on it.
async fn log_stderr(
    stderr: tokio::process::ChildStderr,
    peer: std::net::SocketAddr,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut reader = BufReader::new(stderr);
    let mut logged = 0;
    loop {
        let line = match read_line_bounded(&mut reader, 4096).await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            // A line too long: logged up to here, the rest dropped with the next read.
            Err(_) => Vec::new(),
        };
        if logged >= MAX_STDERR {
            continue;
        }
        logged += line.len();
        let text = String::from_utf8_lossy(&line).into_owned();
        info!("{peer}: program: {text:?}");
        if logged >= MAX_STDERR {
            warn!("{peer}: program: stderr beyond {MAX_STDERR} bytes is not logged");
        }
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        if tail.len() == STDERR_TAIL {
            tail.pop_front();
        }
        tail.push_back(text);
    }
}

/// One line without its newline (`\r\n` too); `None` at the end. A line longer than
/// `max` is an error, and what was read of it is dropped.
async fn read_line_bounded(
    reader: &mut (impl AsyncBufRead + Unpin),
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok((!line.is_empty()).then_some(line));
        }
        let (chunk, found) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if line.len() + chunk.len() > max {
            let n = available.len();
            reader.consume(n);
            return Err(std::io::Error::other(format!("a line over {max} bytes")));
        }
        line.extend_from_slice(chunk);
        match found {
            Some(n) => {
                reader.consume(n);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            None => {
                let n = available.len();
                reader.consume(n);
            }
        }
    }
}

/// A message as one line: `\` as `\\`, a newline as `\n`.
pub fn escape(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The reverse of [`escape`]. A backslash before anything else, or at the end, is kept
/// as it is: a program that never escapes loses nothing but its newlines.
pub fn unescape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_any_message() {
        for message in [
            "",
            "plain",
            "two\nlines",
            "back\\slash",
            "\\n literal",
            "\n\n\\\\",
            "привет\n👋",
        ] {
            let line = escape(message);
            assert!(!line.contains('\n'), "{line:?}");
            assert_eq!(unescape(&line), message);
        }
        assert_eq!(escape("a\\b\nc"), "a\\\\b\\nc");
        assert_eq!(
            unescape("C:\\dir\\x"),
            "C:\\dir\\x",
            "unknown escapes are kept"
        );
        assert_eq!(unescape("trailing\\"), "trailing\\");
    }

    #[tokio::test]
    async fn lines_are_bounded() {
        let mut input: &[u8] = b"short\r\nthis one is far too long\nlast";
        let mut reader = BufReader::new(&mut input);
        assert_eq!(
            read_line_bounded(&mut reader, 10).await.unwrap().unwrap(),
            b"short"
        );
        assert!(read_line_bounded(&mut reader, 10).await.is_err());
    }
}
