//! What a run of the checker checks, and how patiently: the same for every server.

use std::time::Duration;

use crate::wire::CodecKind;

/// The dialogue the server is expected to hold, as chosen by `--mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Every message comes back (tasks 3, 9, 10).
    Echo,
    /// Clients known by IP address and greeted by name (task 7).
    Ident,
    /// Registration and sign-in with passwords (task 8).
    Auth,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Echo => "echo",
            Mode::Ident => "ident",
            Mode::Auth => "auth",
        }
    }
}

/// How to check, the same for every server of a run.
#[derive(Clone, Debug)]
pub struct Settings {
    pub codec: CodecKind,
    pub mode: Mode,
    /// Of each step: a connection, a reply, a close.
    pub timeout: Duration,
    /// The server's largest message (framed and lines).
    pub max_frame: usize,
    /// Of all the cases against one server.
    pub budget: Duration,
    /// NON-STRICT counts as failed.
    pub strict: bool,
    /// `--cases`: which cases run.
    pub cases: String,
}

impl Settings {
    /// The largest message taken from the server: a reply may be the largest echo.
    pub fn reply_max(&self) -> usize {
        self.max_frame.max(1 << 20) + 1024
    }
}
