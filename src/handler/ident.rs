//! Identification mode (lab task 7): clients known by their IP address, greeted by name.
//!
//! Invariant: a client is its IP address alone, never its port, and an IPv4 client of a
//! dual-stack listener is its IPv4 address. A name is stored before the client is told
//! it was, so an acknowledged name survives a crash of the server.
//!
//! Conversation: a known client is greeted by name; an unknown one is asked for its name,
//! up to [`MAX_NAME_TRIES`] times, and then greeted. After that, messages are echoed.

use std::net::IpAddr;

use log::info;

use super::{Handler, Peer, Reply};
use crate::store::{self, SharedStore};
use crate::text;

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Invalid names in a row after which the connection closes.
pub const MAX_NAME_TRIES: u8 = 3;

pub const ASK_NAME: &str = "Hello! I do not know you yet. What is your name?";

pub struct Ident {
    store: SharedStore,
}

impl Ident {
    pub fn new(store: SharedStore) -> Self {
        Ident { store }
    }
}

pub enum State {
    AskingName { ip: IpAddr, refused: u8 },
    Named { name: String },
}

impl Handler for Ident {
    type State = State;

    async fn greet(&self, peer: &Peer) -> anyhow::Result<(State, Reply)> {
        let ip = store::canonical(peer.addr.ip());
        let known = self
            .store
            .run(move |s| s.record_visit(ip, store::now()))
            .await?;
        Ok(match known {
            Some(client) => {
                info!("{ip}: known as {:?}, visit {}", client.name, client.visits);
                (
                    State::Named {
                        name: client.name.clone(),
                    },
                    Reply::say(format!(
                        "Hello, {}! This is visit number {}. Everything you send now comes back.",
                        client.name, client.visits
                    )),
                )
            }
            None => (State::AskingName { ip, refused: 0 }, Reply::say(ASK_NAME)),
        })
    }

    async fn reply(&self, state: &mut State, message: String) -> anyhow::Result<Reply> {
        let State::AskingName { ip, refused } = state else {
            return Ok(Reply::say(message));
        };
        let ip = *ip;
        match check_name(&message) {
            Ok(name) => {
                let name = name.to_owned();
                let client = self
                    .store
                    .run(move |s| s.name_client(ip, &name, store::now()))
                    .await?;
                // Debug formatting: the name is the client's text, escaped for the log.
                info!("{ip}: named {:?}", client.name);
                *state = State::Named {
                    name: client.name.clone(),
                };
                Ok(Reply::say(format!(
                    "Nice to meet you, {}! I will know you by {ip} from now on. \
                     Everything you send now comes back.",
                    client.name
                )))
            }
            Err(reason) => {
                *refused += 1;
                if *refused >= MAX_NAME_TRIES {
                    Ok(Reply::close(format!(
                        "{reason}. Too many invalid names; goodbye."
                    )))
                } else {
                    Ok(Reply::say(format!("{reason}. What is your name?")))
                }
            }
        }
    }
}

/// A name as typed, trimmed; or why it is refused.
pub fn check_name(raw: &str) -> Result<&str, String> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 {
        Err("A name cannot be empty".into())
    } else if chars > MAX_NAME_CHARS {
        Err(format!(
            "A name is at most {MAX_NAME_CHARS} characters, and this one has {chars}"
        ))
    } else if name.chars().any(text::is_unsafe_on_terminals) {
        // Control, format and separator characters can rewrite what an admin's terminal
        // shows (U+202E reverses text, U+2028 starts a line); unassigned ones may show
        // as anything.
        Err("A name cannot contain control, format or separator characters".into())
    } else {
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(check_name("  Alice \r"), Ok("Alice"));
        assert_eq!(check_name("Александра"), Ok("Александра"));
        assert_eq!(check_name("🦀 Ferris"), Ok("🦀 Ferris"));
        let longest = "я".repeat(MAX_NAME_CHARS);
        assert_eq!(check_name(&longest), Ok(longest.as_str()));
        assert!(
            check_name(&"я".repeat(MAX_NAME_CHARS + 1))
                .unwrap_err()
                .contains("has 65")
        );
        assert!(check_name("   ").unwrap_err().contains("empty"));
        assert!(check_name("Al\u{7}ice").unwrap_err().contains("control"));
        assert!(check_name("a\nb").unwrap_err().contains("control"));
        for spoof in ["evil\u{202E}gnp", "a\u{2028}b", "\u{FEFF}Bob", "x\u{E000}"] {
            assert!(check_name(spoof).is_err(), "{spoof:?}");
        }
    }
}
