//! Tools that stand beside the server and reuse its layers.
//!
//! - [`admin`]: `netlab clients|users|sessions`, on the database.
//! - [`bench`]: `netlab bench`, a load generator for echo servers.
//! - [`tls`]: `netlab tls`, the certificate of `serve --tls`.

pub mod admin;
pub mod bench;
pub mod tls;
