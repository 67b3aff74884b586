//! `serve auth --exec` and `serve ident --exec`: a sign-in in front of a program.
//!
//! Invariant: the program starts only once the mode in front knows who the client is
//! (a signed-in user, a named client), and learns it from `NETLAB_USER` or
//! `NETLAB_NAME`; until then it sees nothing. The front mode's own commands (`/whoami`,
//! `/logout`, `/quit`, `/help`) keep working, and when it forgets who the client is (a
//! logout) the program is ended.

use std::sync::Arc;

use tokio::time::Instant;

use super::exec::{ExecConfig, Plugin};
use super::{Auth, Handler, Ident, Peer, Reply};

/// A mode that can say who its client is.
pub trait Gate: Handler {
    /// The variable the program learns the client's identity from.
    const VARIABLE: &'static str;
    const MODE: &'static str;
    /// Who the client is, once it is known.
    fn who(state: &Self::State) -> Option<String>;
    /// Whether the front mode answers `message` itself, even once the program runs.
    fn is_command(message: &str) -> bool;
}

pub struct Gated<H> {
    front: H,
    exec: Arc<ExecConfig>,
}

impl<H> Gated<H> {
    pub fn new(front: H, exec: ExecConfig) -> Self {
        Gated {
            front,
            exec: Arc::new(exec),
        }
    }
}

pub struct State<S> {
    front: S,
    peer: Peer,
    plugin: Option<Plugin>,
}

impl<H: Gate> Gated<H> {
    /// Starts the program if the client has just become known, and puts its greeting
    /// into `reply`, before any token line (which the netlab client takes from the end).
    fn follow(
        &self,
        state: &mut State<H::State>,
        reply: Reply,
    ) -> impl Future<Output = Reply> + Send {
        let who = H::who(&state.front);
        if who.is_none() {
            state.plugin = None; // signed out: the program ends with the session
        }
        let start = match (&who, &state.plugin) {
            (Some(who), None) if !reply.close => Some(Plugin::start(
                &self.exec,
                &state.peer,
                H::MODE,
                &[(H::VARIABLE, who.as_str())],
            )),
            _ => None,
        };
        let plugin = &mut state.plugin;
        async move {
            let Some(started) = start else {
                return reply;
            };
            let mut program = match started {
                Ok(program) => program,
                Err(e) => {
                    log::warn!("could not start the program: {e}");
                    return Reply::close(super::exec::CRASHED);
                }
            };
            let greeting = program.next_reply().await;
            if greeting.close {
                return greeting;
            }
            *plugin = Some(program);
            let token = format!("\n{}", super::auth::TOKEN_LINE);
            let text = match reply.text.rsplit_once(&token) {
                Some((before, token_value)) => {
                    format!("{before}\n{}{token}{token_value}", greeting.text)
                }
                None => format!("{}\n{}", reply.text, greeting.text),
            };
            Reply { text, ..reply }
        }
    }
}

impl<H: Gate> Handler for Gated<H> {
    type State = State<H::State>;

    async fn greet(&self, peer: &Peer) -> anyhow::Result<(Self::State, Reply)> {
        let (front, reply) = self.front.greet(peer).await?;
        let mut state = State {
            front,
            peer: *peer,
            plugin: None,
        };
        let reply = self.follow(&mut state, reply).await;
        Ok((state, reply))
    }

    async fn reply(&self, state: &mut Self::State, message: String) -> anyhow::Result<Reply> {
        if let Some(program) = &mut state.plugin
            && !H::is_command(&message)
        {
            return Ok(program.answer(&message).await);
        }
        let reply = self.front.reply(&mut state.front, message).await?;
        Ok(self.follow(state, reply).await)
    }

    fn deadline(&self, state: &Self::State) -> Option<(Instant, &'static str)> {
        self.front.deadline(&state.front)
    }

    fn may_log(&self, state: &Self::State, message: &str) -> bool {
        // What goes to the program is the user's business, and not logged.
        state.plugin.is_none() && self.front.may_log(&state.front, message)
    }

    async fn ended(&self, state: &mut Self::State) -> Reply {
        match &mut state.plugin {
            Some(program) => program.exited().await,
            None => std::future::pending().await,
        }
    }
}

impl Gate for Auth {
    const VARIABLE: &'static str = "NETLAB_USER";
    const MODE: &'static str = "auth";

    fn who(state: &Self::State) -> Option<String> {
        state.user().map(str::to_owned)
    }

    fn is_command(message: &str) -> bool {
        super::auth::COMMANDS.contains(&message.trim())
    }
}

impl Gate for Ident {
    const VARIABLE: &'static str = "NETLAB_NAME";
    const MODE: &'static str = "ident";

    fn who(state: &Self::State) -> Option<String> {
        match state {
            super::ident::State::Named { name } => Some(name.clone()),
            super::ident::State::AskingName { .. } => None,
        }
    }

    fn is_command(_message: &str) -> bool {
        false
    }
}
