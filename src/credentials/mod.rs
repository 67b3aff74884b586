//! Credentials of the authentication server: passwords and session tokens.
//!
//! - [`password`]: scrypt hashing, bounded in memory and CPU.
//! - [`session_token`]: random tokens, of which only a hash is stored.

pub mod password;
pub mod session_token;
