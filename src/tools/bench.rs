//! `netlab bench`: a load generator for echo servers.
//!
//! Invariant: every echo is checked byte for byte against what was sent. A wrong,
//! missing or late echo is an error, counted and reported, never a measurement; and the
//! run fails if there was any. "Late" is measured against the run, not just the echo:
//! an echo still missing [`LATE_AFTER_END`] after the end of the run is an error, and
//! so is a connection that got no echo at all while measuring (a server that serves one
//! client at a time is caught however short the run).
//!
//! Each connection keeps `pipeline` messages in flight (a closed loop): a writer sends
//! whenever the window has room, a reader takes the echoes in order, times each from the
//! moment it was sent, and reopens the window. Only messages sent after the warm-up and
//! answered before the end are measured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::wire::frame::HEADER_LEN;
use crate::wire::lines;

/// Longest wait for any one echo, or greeting, before it counts as missing.
const ECHO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long after the end of the run the last echoes may still come in.
const LATE_AFTER_END: Duration = Duration::from_secs(1);
/// Connections opened at once while setting up.
const CONNECT_CONCURRENCY: usize = 256;
/// Distinct message contents per connection, so that a stale echo is caught.
const PATTERNS: usize = 61;

pub use crate::wire::CodecKind as Codec;

#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub server: SocketAddr,
    pub conns: usize,
    pub size: usize,
    pub pipeline: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub codec: Codec,
    /// Framed servers that speak first (netlab does; a bare codec server does not).
    pub greeting: bool,
    /// Instead of load: hold this many idle connections, then check each still echoes.
    pub hold: usize,
    /// A server process on this machine whose CPU time to report per message.
    pub server_pid: Option<u32>,
    pub max_frame: usize,
    pub progress: bool,
    /// With --tls: every connection inside TLS. The certificate is not judged (a load
    /// generator on one's own servers), but the handshake is done in full.
    pub tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    /// Instead of load: for the duration, each connection slot connects, (with --tls
    /// handshakes,) sends one message, reads its echo and closes, again and again.
    pub reconnect: bool,
}

/// A connection, plain or inside TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub conns: usize,
    pub size: usize,
    pub pipeline: usize,
    pub seconds: f64,
    pub messages: u64,
    pub messages_per_sec: f64,
    pub mib_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// Everything that went wrong, below and in the connection counts.
    pub errors: u64,
    /// Echoes that differed from what was sent.
    pub wrong_echoes: u64,
    /// Echoes that never came, or came too late: after [`ECHO_TIMEOUT`], or later than
    /// [`LATE_AFTER_END`] after the end of the run.
    pub missing_echoes: u64,
    /// Connections that got no echo while measuring, with no other error.
    pub silent_connections: u64,
    /// Connections refused, or not made within [`ECHO_TIMEOUT`].
    pub connect_failures: u64,
    /// Connections made whose greeting did not come.
    pub no_greeting: u64,
    /// Server CPU time (user + system) per measured message, if a server pid was given.
    pub server_cpu_us_per_msg: Option<f64>,
    /// Hold mode: connections held, and how many still echoed at the end.
    pub held: usize,
    pub still_echoing: usize,
}

/// Runs the benchmark on its own runtime and returns the report.
pub fn run(config: BenchConfig) -> anyhow::Result<Report> {
    crate::process::raise_fd_limit();
    let runtime = tokio::runtime::Runtime::new().context("could not start the runtime")?;
    runtime.block_on(async {
        if config.hold > 0 {
            hold(&config).await
        } else if config.reconnect {
            reconnect(&config).await
        } else {
            load(&config).await
        }
    })
}

/// Whether a report should make the command fail, and why.
pub fn failed(report: &Report) -> Option<String> {
    let counts = [
        (report.wrong_echoes, "wrong echo(es)"),
        (report.missing_echoes, "missing or late echo(es)"),
        (
            report.silent_connections,
            "connection(s) with no echo while measuring",
        ),
        (report.connect_failures, "failed connection(s)"),
        (report.no_greeting, "connection(s) with no greeting"),
        (
            (report.held - report.still_echoing) as u64,
            "held connection(s) no longer echoing",
        ),
    ];
    let said: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    (!said.is_empty()).then(|| said.join(", "))
}

/// Why no connection could be used, from how each failed.
fn none_usable(config: &BenchConfig, failures: Failures) -> anyhow::Error {
    if failures.no_greeting > 0 {
        anyhow::anyhow!(
            "connected to {}, but no greeting came within {}s; a server that does not \
             greet? try --no-greeting (or --codec raw for a raw echo server)",
            config.server,
            ECHO_TIMEOUT.as_secs()
        )
    } else {
        anyhow::anyhow!("no connection to {} succeeded", config.server)
    }
}

async fn load(config: &BenchConfig) -> anyhow::Result<Report> {
    if config.conns == 0 || config.pipeline == 0 {
        bail!("--conns and --pipeline must be at least 1");
    }
    let (streams, failures) = connect_all(config, config.conns).await;
    if streams.is_empty() {
        return Err(none_usable(config, failures));
    }
    let start = Instant::now();
    let window = Window {
        measure_from: start + config.warmup,
        end: start + config.warmup + config.duration,
    };
    let done = Arc::new(AtomicU64::new(0));
    let progress = config
        .progress
        .then(|| spawn_progress(config.warmup + config.duration, Arc::clone(&done)));
    let cpu = CpuSampler::new(config.server_pid, window);
    let cpu_task = tokio::spawn(cpu.run());

    let mut tasks = JoinSet::new();
    for (id, stream) in streams.into_iter().enumerate() {
        let config = config.clone();
        let done = Arc::clone(&done);
        tasks.spawn(drive(stream, id, config, window, done));
    }
    let mut histogram = new_histogram();
    let mut messages = 0u64;
    let mut report = Report::default();
    while let Some(result) = tasks.join_next().await {
        let outcome = result.context("a connection task failed")?;
        histogram
            .add(&outcome.histogram)
            .context("merging latencies")?;
        messages += outcome.measured;
        match outcome.error {
            Some(EchoError::Wrong) => report.wrong_echoes += 1,
            Some(EchoError::Missing) => report.missing_echoes += 1,
            None if outcome.measured == 0 => report.silent_connections += 1,
            None => {}
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let server_cpu = cpu_task.await.ok().flatten();

    let seconds = config.duration.as_secs_f64();
    let us = |ns: u64| ns as f64 / 1000.0;
    Ok(Report {
        mode: "load",
        conns: config.conns,
        size: config.size,
        pipeline: config.pipeline,
        seconds,
        messages,
        messages_per_sec: messages as f64 / seconds,
        mib_per_sec: (messages as f64 * config.size as f64) / seconds / (1024.0 * 1024.0),
        p50_us: us(histogram.value_at_quantile(0.5)),
        p99_us: us(histogram.value_at_quantile(0.99)),
        p999_us: us(histogram.value_at_quantile(0.999)),
        max_us: us(histogram.max()),
        errors: report.wrong_echoes
            + report.missing_echoes
            + report.silent_connections
            + failures.connect
            + failures.no_greeting,
        connect_failures: failures.connect,
        no_greeting: failures.no_greeting,
        server_cpu_us_per_msg: server_cpu
            .filter(|_| messages > 0)
            .map(|cpu_us| cpu_us / messages as f64),
        ..report
    })
}

/// Opens `count` connections, idle, keeps them for the duration, then checks that each
/// still answers one message.
async fn hold(config: &BenchConfig) -> anyhow::Result<Report> {
    let (streams, failures) = connect_all(config, config.hold).await;
    let held = streams.len();
    let progress = config
        .progress
        .then(|| spawn_progress(config.duration, Arc::new(AtomicU64::new(0))));
    tokio::time::sleep(config.duration).await;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let mut checks = JoinSet::new();
    let limit = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    for (id, stream) in streams.into_iter().enumerate() {
        let config = config.clone();
        let limit = Arc::clone(&limit);
        checks.spawn(async move {
            let _slot = limit.acquire_owned().await;
            echo_once(stream, id, &config).await.is_ok()
        });
    }
    let mut still_echoing = 0;
    while let Some(ok) = checks.join_next().await {
        still_echoing += usize::from(ok.unwrap_or(false));
    }
    Ok(Report {
        mode: "hold",
        conns: config.hold,
        size: config.size,
        seconds: config.duration.as_secs_f64(),
        errors: (held - still_echoing) as u64 + failures.connect + failures.no_greeting,
        connect_failures: failures.connect,
        no_greeting: failures.no_greeting,
        held,
        still_echoing,
        ..Report::default()
    })
}

/// Connection cycles: each of `conns` slots connects, (with TLS handshakes,) reads the
/// greeting, sends one message, checks its echo and closes, again and again. A cycle's
/// latency is all of that; a slot stops at its first failure, which is counted.
async fn reconnect(config: &BenchConfig) -> anyhow::Result<Report> {
    if config.conns == 0 {
        bail!("--conns must be at least 1");
    }
    let start = Instant::now();
    let window = Window {
        measure_from: start + config.warmup,
        end: start + config.warmup + config.duration,
    };
    let done = Arc::new(AtomicU64::new(0));
    let progress = config
        .progress
        .then(|| spawn_progress(config.warmup + config.duration, Arc::clone(&done)));
    let cpu_task = tokio::spawn(CpuSampler::new(config.server_pid, window).run());
    let mut slots = JoinSet::new();
    for id in 0..config.conns {
        let (config, done) = (config.clone(), Arc::clone(&done));
        slots.spawn(async move {
            let mut histogram = new_histogram();
            let mut failures = Failures::default();
            let mut wrong = 0;
            while Instant::now() < window.end {
                let began = Instant::now();
                let conn = match open(&config).await {
                    Ok(conn) => conn,
                    Err(Failed::Connect) => {
                        failures.connect += 1;
                        break;
                    }
                    Err(Failed::Greeting) => {
                        failures.no_greeting += 1;
                        break;
                    }
                };
                if echo_once(conn, id, &config).await.is_err() {
                    wrong += 1;
                    break;
                }
                let ended = Instant::now();
                if began >= window.measure_from && ended <= window.end {
                    let _ = histogram.record((ended - began).as_nanos() as u64);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            (histogram, failures, wrong)
        });
    }
    let mut histogram = new_histogram();
    let mut failures = Failures::default();
    let mut wrong_echoes = 0;
    while let Some(slot) = slots.join_next().await {
        let (h, f, w) = slot.context("a connection task failed")?;
        histogram.add(&h).context("merging latencies")?;
        failures.connect += f.connect;
        failures.no_greeting += f.no_greeting;
        wrong_echoes += w;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let server_cpu = cpu_task.await.ok().flatten();
    let cycles = histogram.len();
    let seconds = config.duration.as_secs_f64();
    let us = |ns: u64| ns as f64 / 1000.0;
    Ok(Report {
        mode: "reconnect",
        conns: config.conns,
        size: config.size,
        pipeline: 1,
        seconds,
        messages: cycles,
        messages_per_sec: cycles as f64 / seconds,
        p50_us: us(histogram.value_at_quantile(0.5)),
        p99_us: us(histogram.value_at_quantile(0.99)),
        p999_us: us(histogram.value_at_quantile(0.999)),
        max_us: us(histogram.max()),
        errors: wrong_echoes + failures.connect + failures.no_greeting,
        wrong_echoes,
        connect_failures: failures.connect,
        no_greeting: failures.no_greeting,
        server_cpu_us_per_msg: server_cpu
            .filter(|_| cycles > 0)
            .map(|cpu_us| cpu_us / cycles as f64),
        ..Report::default()
    })
}

#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    end: Instant,
}

struct Outcome {
    histogram: Histogram<u64>,
    measured: u64,
    /// What ended the connection early, if anything did: after an error the stream
    /// can no longer be trusted, so a connection counts at most one.
    error: Option<EchoError>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum EchoError {
    Wrong,
    /// Not in time, or the connection failed before it came.
    Missing,
}

/// One connection's closed loop: see the module doc.
async fn drive(
    stream: Conn,
    id: usize,
    config: BenchConfig,
    window: Window,
    done: Arc<AtomicU64>,
) -> Outcome {
    // Plain TCP splits without a lock; TLS has one session for both directions.
    match stream {
        Conn::Plain(stream) => {
            let (reader, writer) = stream.into_split();
            drive_halves(reader, writer, id, config, window, done).await
        }
        Conn::Tls(stream) => {
            let (reader, writer) = tokio::io::split(stream);
            drive_halves(reader, writer, id, config, window, done).await
        }
    }
}

async fn drive_halves(
    reader: impl AsyncRead + Unpin + Send + 'static,
    writer: impl AsyncWrite + Unpin + Send + 'static,
    id: usize,
    config: BenchConfig,
    window: Window,
    done: Arc<AtomicU64>,
) -> Outcome {
    let pattern = Arc::new(Pattern::new(id, config.size));
    let room = Arc::new(Semaphore::new(config.pipeline));
    // Send times, in order; the writer drops its end when it stops sending.
    let (sent, sent_at) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(
        writer,
        config.clone(),
        Arc::clone(&pattern),
        Arc::clone(&room),
        sent,
        window.end,
    ));
    let mut outcome = read_loop(reader, &config, &pattern, &room, sent_at, window, &done).await;
    // The writer stops at the end of the window; if the reader failed first, the writer
    // may be waiting for room that will never come.
    writer.abort();
    if let Ok(Err(_)) = writer.await {
        outcome.error.get_or_insert(EchoError::Missing);
    }
    outcome
}

async fn write_loop(
    mut writer: impl AsyncWrite + Unpin,
    config: BenchConfig,
    pattern: Arc<Pattern>,
    room: Arc<Semaphore>,
    sent: mpsc::UnboundedSender<Instant>,
    end: Instant,
) -> std::io::Result<()> {
    let frame_len = HEADER_LEN + config.size;
    let mut buf = Vec::with_capacity(frame_len * config.pipeline);
    let mut seq = 0u64;
    loop {
        let permit = tokio::select! {
            permit = room.acquire() => permit,
            () = sleep_until(end) => break,
        };
        let Ok(permit) = permit else { break };
        permit.forget();
        // Everything the window has room for leaves in one write, as a pipelining client
        // would send it; one write per message would make this side the bottleneck.
        let mut batch = 1;
        while let Ok(more) = room.try_acquire() {
            more.forget();
            batch += 1;
        }
        let now = Instant::now();
        if now >= end {
            break;
        }
        buf.clear();
        for _ in 0..batch {
            put_message(config.codec, &mut buf, pattern.message(seq));
            seq += 1;
            if sent.send(now).is_err() {
                return Ok(()); // the reader has stopped
            }
        }
        writer.write_all(&buf).await?;
    }
    // Done sending: a half-close (with TLS, close_notify), after which the server still
    // echoes what it has, then closes.
    let _ = writer.shutdown().await;
    Ok(())
}

async fn read_loop(
    reader: impl AsyncRead + Unpin,
    config: &BenchConfig,
    pattern: &Pattern,
    room: &Semaphore,
    mut sent_at: mpsc::UnboundedReceiver<Instant>,
    window: Window,
    done: &AtomicU64,
) -> Outcome {
    let mut outcome = Outcome {
        histogram: new_histogram(),
        measured: 0,
        error: None,
    };
    let last_call = window.end + LATE_AFTER_END;
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let frame_len = wire_len(config.codec, config.size);
    let mut echo = vec![0u8; frame_len];
    let mut seq = 0u64;
    let mut released = 0;
    // Until the writer has stopped and every message it sent has come back.
    while let Some(sent) = sent_at.recv().await {
        let read = async {
            reader.read_exact(&mut echo).await?;
            Ok::<_, std::io::Error>(is_echo_of(config.codec, &echo, pattern.message(seq)))
        };
        let deadline = (sent + ECHO_TIMEOUT).min(last_call);
        match timeout_at(deadline, read).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                outcome.error = Some(EchoError::Wrong);
                return outcome;
            }
            Ok(Err(_)) | Err(_) => {
                outcome.error = Some(EchoError::Missing);
                return outcome;
            }
        }
        let now = Instant::now();
        if sent >= window.measure_from && now <= window.end {
            let ns = now
                .duration_since(sent)
                .as_nanos()
                .try_into()
                .unwrap_or(u64::MAX);
            outcome.histogram.saturating_record(ns.max(1));
            outcome.measured += 1;
        }
        done.fetch_add(1, Ordering::Relaxed);
        // The window reopens once per network read, for all the echoes it brought, as a
        // pipelining client would refill it; one wake-up per echo would make the writer
        // send batches of one.
        released += 1;
        if reader.buffer().len() < frame_len {
            room.add_permits(released);
            released = 0;
        }
        seq += 1;
    }
    outcome
}

/// Connections that could not be used, by why.
#[derive(Clone, Copy, Debug, Default)]
struct Failures {
    connect: u64,
    no_greeting: u64,
}

/// Connects `count` times, at most [`CONNECT_CONCURRENCY`] at once, reading each
/// greeting if the server sends one; returns the connections and the failures.
async fn connect_all(config: &BenchConfig, count: usize) -> (Vec<Conn>, Failures) {
    let limit = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        let (limit, config) = (Arc::clone(&limit), config.clone());
        tasks.spawn(async move {
            let _slot = limit.acquire_owned().await;
            open(&config).await
        });
    }
    let mut streams = Vec::with_capacity(count);
    let mut failures = Failures::default();
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(Ok(stream)) => streams.push(stream),
            Ok(Err(Failed::Greeting)) => failures.no_greeting += 1,
            Ok(Err(Failed::Connect)) | Err(_) => failures.connect += 1,
        }
    }
    (streams, failures)
}

enum Failed {
    Connect,
    Greeting,
}

async fn open(config: &BenchConfig) -> Result<Conn, Failed> {
    let Ok(Ok(stream)) = timeout(ECHO_TIMEOUT, TcpStream::connect(config.server)).await else {
        return Err(Failed::Connect);
    };
    stream.set_nodelay(true).map_err(|_| Failed::Connect)?;
    let mut conn = match &config.tls {
        None => Conn::Plain(stream),
        Some(tls) => {
            let name = ServerName::from(config.server.ip());
            let connector = TlsConnector::from(Arc::clone(tls));
            match timeout(ECHO_TIMEOUT, connector.connect(name, stream)).await {
                Ok(Ok(stream)) => Conn::Tls(Box::new(stream)),
                _ => return Err(Failed::Connect),
            }
        }
    };
    let greeted = match &mut conn {
        Conn::Plain(s) => greeting(config, s).await,
        Conn::Tls(s) => greeting(config, s.as_mut()).await,
    };
    greeted.map_err(|_| Failed::Greeting)?;
    Ok(conn)
}

/// Reads the server's greeting, if it sends one.
async fn greeting(
    config: &BenchConfig,
    stream: &mut (impl AsyncRead + Unpin),
) -> anyhow::Result<()> {
    match config.codec {
        _ if !config.greeting => {}
        Codec::Framed => {
            let mut header = [0u8; HEADER_LEN];
            timeout(ECHO_TIMEOUT, stream.read_exact(&mut header)).await??;
            let len = u32::from_be_bytes(header) as usize;
            if len > config.max_frame {
                bail!("greeting of {len} bytes is over the maximum");
            }
            let mut greeting = vec![0u8; len];
            timeout(ECHO_TIMEOUT, stream.read_exact(&mut greeting)).await??;
        }
        Codec::Lines => {
            // Nothing follows the greeting until we speak, so it ends where the reads
            // do.
            let mut greeting = Vec::new();
            while !lines::ends_message(&greeting) {
                if greeting.len() > config.max_frame {
                    bail!("greeting over the maximum of {} bytes", config.max_frame);
                }
                if timeout(ECHO_TIMEOUT, stream.read_buf(&mut greeting)).await?? == 0 {
                    bail!("the server closed the connection during its greeting");
                }
            }
        }
        Codec::Raw => {}
    }
    Ok(())
}

/// Appends one message holding `payload` to `buf`, in `codec`'s form.
fn put_message(codec: Codec, buf: &mut Vec<u8>, payload: &[u8]) {
    if codec == Codec::Framed {
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    }
    buf.extend_from_slice(payload);
    if codec == Codec::Lines {
        buf.push(b'\n');
    }
}

/// Bytes on the wire for a message of `size` bytes.
fn wire_len(codec: Codec, size: usize) -> usize {
    match codec {
        Codec::Framed => HEADER_LEN + size,
        Codec::Lines => size + 1,
        Codec::Raw => size,
    }
}

/// Whether `echo`, `wire_len` bytes off the wire, is the echo of `payload`.
fn is_echo_of(codec: Codec, echo: &[u8], payload: &[u8]) -> bool {
    match codec {
        Codec::Framed => {
            echo[..HEADER_LEN] == (payload.len() as u32).to_be_bytes()
                && &echo[HEADER_LEN..] == payload
        }
        Codec::Lines => echo.split_last() == Some((&b'\n', payload)),
        Codec::Raw => echo == payload,
    }
}

async fn echo_once(stream: Conn, id: usize, config: &BenchConfig) -> anyhow::Result<()> {
    match stream {
        Conn::Plain(mut s) => echo_on(&mut s, id, config).await,
        Conn::Tls(mut s) => echo_on(s.as_mut(), id, config).await,
    }
}

async fn echo_on(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    id: usize,
    config: &BenchConfig,
) -> anyhow::Result<()> {
    let pattern = Pattern::new(id, config.size);
    let mut frame = Vec::new();
    put_message(config.codec, &mut frame, pattern.message(0));
    stream.write_all(&frame).await?;
    let mut echo = vec![0u8; frame.len()];
    timeout(ECHO_TIMEOUT, stream.read_exact(&mut echo)).await??;
    if echo != frame {
        bail!("wrong echo");
    }
    // An orderly end (with TLS, close_notify), as a well-behaved client leaves.
    let _ = stream.shutdown().await;
    Ok(())
}

/// Message contents: ASCII (valid UTF-8 for framed servers), different for each
/// connection and for consecutive messages, cheap to produce and to check.
struct Pattern {
    bytes: Vec<u8>,
    size: usize,
}

impl Pattern {
    fn new(id: usize, size: usize) -> Pattern {
        let bytes = (0..size + PATTERNS)
            .map(|i| b'a' + ((i * 7 + id) % 26) as u8)
            .collect();
        Pattern { bytes, size }
    }

    fn message(&self, seq: u64) -> &[u8] {
        let offset = (seq % PATTERNS as u64) as usize;
        &self.bytes[offset..offset + self.size]
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns to 100 s, three significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

fn spawn_progress(total: Duration, done: Arc<AtomicU64>) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total.as_millis() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {elapsed}/{duration} {msg}")
            .expect("a valid template"),
    );
    let ticker = bar.clone();
    tokio::spawn(async move {
        let start = Instant::now();
        while !ticker.is_finished() {
            ticker.set_position(start.elapsed().as_millis() as u64);
            ticker.set_message(format!("{} echoes", done.load(Ordering::Relaxed)));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    bar
}

/// Reads a process's CPU time at the start and the end of the measured window.
struct CpuSampler {
    pid: Option<u32>,
    window: Window,
}

impl CpuSampler {
    fn new(pid: Option<u32>, window: Window) -> Self {
        CpuSampler { pid, window }
    }

    /// CPU microseconds the process spent in the window.
    async fn run(self) -> Option<f64> {
        let pid = self.pid?;
        sleep_until(self.window.measure_from).await;
        let before = cpu_ticks(pid)?;
        sleep_until(self.window.end).await;
        let after = cpu_ticks(pid)?;
        // SAFETY: sysconf has no preconditions.
        let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        (ticks_per_sec > 0).then(|| (after - before) as f64 * 1e6 / ticks_per_sec as f64)
    }
}

/// utime + stime of a process, in clock ticks, from /proc.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are fixed.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The report as people read it.
pub fn render(report: &Report, config: &BenchConfig) -> String {
    let codec = match (&config.tls, config.codec.name()) {
        (Some(_), name) => format!("{name} over TLS"),
        (None, name) => name.to_owned(),
    };
    let mut out = String::new();
    if report.mode == "reconnect" {
        out += &format!(
            "netlab bench: {}, {codec}, {} slots each connecting, echoing one {}-byte message \
             and closing, {:.0}s\n",
            config.server, report.conns, report.size, report.seconds
        );
        out += &format!("connections/s  {:.0}\n", report.messages_per_sec);
        out += &format!(
            "cycle          p50 {:.0} us   p99 {:.0} us   max {:.0} us\n",
            report.p50_us, report.p99_us, report.max_us
        );
        out += &format!(
            "errors         {}   (wrong {}, connect failures {}, no greeting {})\n",
            report.errors, report.wrong_echoes, report.connect_failures, report.no_greeting
        );
        if let Some(cpu) = report.server_cpu_us_per_msg {
            out += &format!("server CPU     {cpu:.1} us per connection\n");
        }
        return out;
    }
    if report.mode == "hold" {
        out += &format!(
            "netlab bench: {}, {codec}, held {} of {} idle connections for {:.0}s\n",
            config.server, report.held, report.conns, report.seconds
        );
        out += &format!(
            "still echoing {}   errors {}   connect failures {}   no greeting {}\n",
            report.still_echoing, report.errors, report.connect_failures, report.no_greeting
        );
        return out;
    }
    out += &format!(
        "netlab bench: {}, {codec}, {} connections, {}-byte messages, pipeline {}, {:.0}s\n",
        config.server, report.conns, report.size, report.pipeline, report.seconds
    );
    out += &format!(
        "messages/s  {:.0}\nMiB/s       {:.1}\n",
        report.messages_per_sec, report.mib_per_sec
    );
    out += &format!(
        "latency     p50 {:.0} us   p99 {:.0} us   p99.9 {:.0} us   max {:.0} us\n",
        report.p50_us, report.p99_us, report.p999_us, report.max_us
    );
    out += &format!(
        "errors      {}   (wrong {}, missing or late {}, silent connections {}, \
         connect failures {}, no greeting {})\n",
        report.errors,
        report.wrong_echoes,
        report.missing_echoes,
        report.silent_connections,
        report.connect_failures,
        report.no_greeting
    );
    if let Some(cpu) = report.server_cpu_us_per_msg {
        out += &format!("server CPU  {cpu:.2} us per message\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_differ_between_messages_and_connections() {
        let a = Pattern::new(0, 64);
        let b = Pattern::new(1, 64);
        assert_ne!(a.message(0), a.message(1));
        assert_ne!(a.message(0), b.message(0));
        assert_eq!(a.message(0), a.message(PATTERNS as u64));
        assert!(std::str::from_utf8(a.message(5)).is_ok());
    }

    #[test]
    fn each_codec_recognises_its_own_echo_only() {
        let payload = b"abc";
        for codec in [Codec::Framed, Codec::Lines, Codec::Raw] {
            let mut wire = Vec::new();
            put_message(codec, &mut wire, payload);
            assert_eq!(wire.len(), wire_len(codec, payload.len()), "{codec:?}");
            assert!(is_echo_of(codec, &wire, payload), "{codec:?}");
            let last = wire.len() - 1;
            wire[last] ^= 1;
            assert!(!is_echo_of(codec, &wire, payload), "{codec:?}");
        }
    }

    #[test]
    fn a_clean_report_passes_and_each_kind_of_error_is_named() {
        assert_eq!(failed(&Report::default()), None);
        let report = Report {
            wrong_echoes: 1,
            silent_connections: 2,
            no_greeting: 3,
            ..Report::default()
        };
        assert_eq!(
            failed(&report).unwrap(),
            "1 wrong echo(es), 2 connection(s) with no echo while measuring, \
             3 connection(s) with no greeting"
        );
        let held = Report {
            held: 5,
            still_echoing: 4,
            ..Report::default()
        };
        assert_eq!(
            failed(&held).unwrap(),
            "1 held connection(s) no longer echoing"
        );
    }

    #[test]
    fn cpu_time_of_this_process_is_readable() {
        assert!(cpu_ticks(std::process::id()).is_some());
    }
}
