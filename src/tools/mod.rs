//! Tools that stand beside the server and reuse its layers.
//!
//! - [`admin`]: `netlab clients|users|sessions`, on the database.
//! - [`bench`]: `netlab bench`, a load generator for echo servers.
//! - [`check`]: `netlab check`, numbered cases that grade any server of the lab.
//! - [`tls`]: `netlab tls`, the certificate of `serve --tls`.

pub mod admin;
pub mod bench;
pub mod check;
pub mod tls;
