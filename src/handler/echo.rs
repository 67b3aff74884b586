//! Echo mode (lab task 3): every message comes back unchanged.

use super::{Handler, Peer, Reply};

pub const GREETING: &str =
    "netlab echo server: every message you send comes back unchanged. /quit leaves.";

#[derive(Debug, Default)]
pub struct Echo;

impl Handler for Echo {
    type State = ();

    async fn greet(&self, _peer: &Peer) -> anyhow::Result<((), Reply)> {
        Ok(((), Reply::say(GREETING)))
    }

    async fn reply(&self, _state: &mut (), message: String) -> anyhow::Result<Reply> {
        Ok(Reply::say(message))
    }
}
