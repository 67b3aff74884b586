//! Helpers: start a server on port 0, talk to it, wait for processes with a deadline.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netlab::wire::frame::{RecvMsg, SendMsg};

/// Runs `cmd` in a pseudo-terminal, as a user at a keyboard would.
pub fn in_terminal(cmd: Command) -> rexpect::session::PtySession {
    let options = rexpect::reader::Options::new()
        .timeout_ms(Some(PATIENCE.as_millis() as u64))
        .strip_ansi_escape_codes(true);
    rexpect::session::spawn_with_options(cmd, options).unwrap()
}

/// `python3`, for the tests that run the Python examples or a Python test server. Fails
/// with a message naming what is missing, rather than "No such file or directory".
pub fn python3() -> Command {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    if let Err(message) = CHECKED.get_or_init(|| required("python3")) {
        panic!("{message}");
    }
    Command::new("python3")
}

/// Whether `program` runs; if not, a message that names it and says what to do.
pub fn required(program: &str) -> Result<(), String> {
    match Command::new(program).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        failed => Err(format!(
            "this test needs {program} (the examples and some test servers are Python, \
             standard library only), and it could not be run ({}). Install it (Debian: \
             apt-get install python3), or skip these tests: cargo test -- --skip python",
            match failed {
                Ok(out) => format!("it exited with {}", out.status),
                Err(e) => e.to_string(),
            }
        )),
    }
}

/// Upper bound for anything a test waits on; tests normally finish far sooner.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The data directory of every netlab a test starts, unless it names its own: a server
/// started without one must not write the developer's own log.
const SHARED_DATA: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/xdg-data");

pub fn netlab() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netlab"));
    // Settings from the developer's shell must not leak into tests.
    for (key, _) in std::env::vars() {
        if key.starts_with("NETLAB_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.env("XDG_DATA_HOME", SHARED_DATA);
    cmd
}

/// A `netlab serve` process on 127.0.0.1 and a port the system chose; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    stdout: BufReader<std::process::ChildStdout>,
    dir: tempfile::TempDir,
    /// The built-in log, in the data directory the server was given or this one's.
    log: PathBuf,
}

impl Server {
    /// Starts `netlab serve <args> --port 0` and waits for its `listening on` line.
    pub fn start(args: &[&str]) -> Server {
        let mut cmd = netlab();
        cmd.arg("serve").args(args).args(["--port", "0"]);
        Server::start_command(cmd)
    }

    /// Starts a prepared `netlab serve` command. Its data directory (so its built-in
    /// log) is a fresh temporary one, unless the command sets XDG_DATA_HOME itself.
    pub fn start_command(mut cmd: Command) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let stderr = fs::File::create(dir.path().join("stderr")).unwrap();
        let own_data = cmd
            .get_envs()
            .find(|(k, v)| *k == "XDG_DATA_HOME" && *v != Some(SHARED_DATA.as_ref()))
            .and_then(|(_, v)| v.map(PathBuf::from));
        let data = own_data.unwrap_or_else(|| dir.path().join("data"));
        cmd.env("XDG_DATA_HOME", &data);
        let log = data.join("netlab/netlab.log");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let line = with_deadline(PATIENCE, move || {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            (line, stdout)
        });
        let (line, stdout) = line.expect("server printed no `listening on` line in time");
        let addr = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .unwrap();
        Server {
            child,
            addr,
            stdout,
            dir,
            log,
        }
    }

    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// The next line the server prints on stdout (after `listening on`), waited for at
    /// most PATIENCE.
    pub fn next_line(&mut self) -> String {
        let mut line = String::new();
        if !self.stdout.buffer().contains(&b'\n') {
            let mut ready = libc::pollfd {
                fd: self.stdout.get_ref().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the duration of the call.
            let n = unsafe { libc::poll(&mut ready, 1, PATIENCE.as_millis() as i32) };
            assert!(n > 0, "no line from the server in time");
        }
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        stream
    }

    /// Connects from `source`, a loopback address such as 127.0.0.2: to the server, a
    /// different machine for each address.
    pub fn connect_from(&self, source: &str) -> TcpStream {
        connect_from(self.addr, source)
    }

    /// Kills the server with SIGKILL, as a crash or a power cut would stop it.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Connects and reads the greeting.
    pub fn client(&self) -> TcpStream {
        let mut stream = self.connect();
        let greeting = stream.recv_msg().unwrap().expect("a greeting");
        assert!(!greeting.is_empty());
        stream
    }

    /// The server's built-in log so far (empty before the first line is written).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    /// What the server wrote to stderr so far: fatal errors only.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr")).unwrap()
    }

    /// Waits until the log contains `needle`, for at most [`PATIENCE`].
    pub fn wait_for_log(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "log never contained {needle:?}:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the server to exit; returns its status, the rest of its stdout, and its
    /// log.
    pub fn wait(mut self) -> (ExitStatus, String, String) {
        let status = wait_with_deadline(&mut self.child, PATIENCE).expect("server did not exit");
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (status, rest, self.log())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP connection to `server` from the local address `source`.
pub fn connect_from(server: SocketAddr, source: &str) -> TcpStream {
    let source: std::net::IpAddr = source.parse().unwrap();
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(server),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    socket.bind(&SocketAddr::new(source, 0).into()).unwrap();
    socket.connect(&server.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Runs `f` on a thread; `None` if it takes longer than `limit`.
pub fn with_deadline<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Runs a command with `input` on stdin and returns its output, within [`PATIENCE`].
pub fn run_with_input(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let pid = child.id();
    with_deadline(PATIENCE, move || child.wait_with_output().unwrap()).unwrap_or_else(|| {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("command did not finish in time")
    })
}

/// Sends `msg` and returns the reply.
pub fn echo(stream: &mut TcpStream, msg: &str) -> String {
    stream.send_msg(msg).unwrap();
    stream.recv_msg().unwrap().expect("a reply")
}

/// Reads until the server closes; returns the bytes received.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap();
    got
}

/// Closes with a reset (RST) instead of a FIN, as a crashed client would.
pub fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}
