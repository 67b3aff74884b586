//! netlab: the reference implementation of the "simple TCP client and echo server" lab.
//!
//! The source tree is the architecture. A server connection passes through three
//! layers, each a folder, and the handlers reach the database through a fourth:
//!
//! ```text
//! transport (TCP)  ->  wire (framed, raw)  ->  handler (echo, ident, auth)
//!                                                   \->  store (SQLite)
//! ```
//!
//! - [`transport`]: listening sockets (task 6).
//! - [`wire`]: the wire format and the async connection (task 9).
//! - [`handler`]: the server modes (tasks 3, 7, 8), which see messages only.
//! - [`server`]: the accept loop and the conversation loop, written once for all modes.
//! - [`store`]: the SQLite database; [`credentials`]: passwords and session tokens.
//! - [`client`]: `netlab connect` (task 10); [`cli`]: flags and prompts (task 4);
//!   [`logging`]: the service log (task 5); [`tools`]: admin commands and the benchmark;
//!   [`text`]: client-chosen text made safe to show.

pub mod cli;
pub mod client;
pub mod credentials;
pub mod handler;
pub mod logging;
pub mod private_file;
pub mod process;
pub mod server;
pub mod store;
pub mod terminal;
pub mod text;
pub mod tools;
pub mod transport;
pub mod wire;
