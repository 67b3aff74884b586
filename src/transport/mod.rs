//! The transport: how a server gets its byte streams.
//!
//! - [`listen`]: the listening socket, moving on to the next port when one is taken
//!   (lab task 6).

pub mod listen;
