//! Integration tests: the real `netlab` binary, real sockets on 127.0.0.1.
//!
//! One test binary (see `autotests = false` in Cargo.toml), so everything links once.

mod support;

mod auth;
mod bench;
mod check;
mod client;
mod demos;
mod echo;
mod exec;
mod guessing;
mod ident;
mod lines;
mod ports;
mod prompts;
mod python_example;
mod raw;
mod service_log;
mod shutdown;
mod tls;
mod usage;
mod wire;
