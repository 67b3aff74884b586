//! Session tokens: the cookie of the authentication server.
//!
//! Invariant: a token is 32 random bytes from the operating system, shown as 64 hex
//! digits, and only its SHA-256 is stored. A copy of the database opens no session.

use anyhow::Context;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Bytes of randomness in a token.
pub const TOKEN_BYTES: usize = 32;

/// A fresh token, as hex, and the hash to store.
pub fn generate() -> anyhow::Result<(Zeroizing<String>, Vec<u8>)> {
    let mut raw = Zeroizing::new([0u8; TOKEN_BYTES]);
    getrandom::fill(raw.as_mut()).context("no randomness from the operating system")?;
    let token = Zeroizing::new(hex::encode(raw.as_ref()));
    let hash = Sha256::digest(raw.as_ref()).to_vec();
    Ok((token, hash))
}

/// The stored hash of a token presented by a client; `None` if it is not well formed.
pub fn hash_of(token: &str) -> Option<Vec<u8>> {
    let raw = Zeroizing::new(hex::decode(token).ok()?);
    (raw.len() == TOKEN_BYTES).then(|| Sha256::digest(raw.as_slice()).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_hashes_to_what_was_stored() {
        let (token, stored) = generate().unwrap();
        assert_eq!(token.len(), 2 * TOKEN_BYTES);
        assert_eq!(hash_of(&token), Some(stored.clone()));
        assert_ne!(
            stored,
            hex::decode(token.as_str()).unwrap(),
            "the hash is not the token"
        );
    }

    #[test]
    fn tokens_differ_and_malformed_ones_are_refused() {
        assert_ne!(generate().unwrap().0, generate().unwrap().0);
        assert_eq!(hash_of("abc"), None);
        assert_eq!(hash_of(&"zz".repeat(32)), None);
        assert_eq!(hash_of(&"00".repeat(31)), None);
    }
}
