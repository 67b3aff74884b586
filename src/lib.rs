//! netlab: the reference implementation of the "simple TCP client and echo server" lab.
//!
//! - [`frame`]: the wire format, and `send_msg`/`recv_msg` for any blocking stream (task 9).
//! - [`connection`]: the same frames on the async side, with deadlines.
//! - [`server`]: the accept loop shared by every mode, and the modes (tasks 3, 10).
//! - [`client`]: the conversation client behind `netlab connect` (task 10).

pub mod admin;
pub mod bench;
pub mod cli;
pub mod client;
pub mod connection;
pub mod frame;
pub mod limits;
pub mod logging;
pub mod password;
pub mod prompt;
pub mod server;
pub mod session_token;
pub mod store;
pub mod tokens;
