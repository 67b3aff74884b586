//! Authentication mode (lab task 8): passwords hashed with scrypt, and session tokens
//! that work like cookies.
//!
//! Invariant: no password or token is ever logged, echoed, or stored in clear. Messages
//! that may hold one are kept out of the debug log ([`Handler::may_log`]), passwords live
//! in zeroized buffers and only their scrypt hash is stored, and of a token only its
//! SHA-256 is stored.
//!
//! The conversation, in order: the username (or `/token`, see docs/PROTOCOL.md); then
//! the password of a known user, or a new password twice for a new one; then the user is
//! signed in, and messages are echoed except for the commands in [`HELP`]. A connection
//! that has not signed in within the login timeout is closed, and so is one that gets
//! [`MAX_WRONG_PASSWORDS`] wrong.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use log::{error, info, warn};
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::{Handler, Peer, Reply};
use crate::credentials::password::{self, HashError, Hasher, Verdict};
use crate::credentials::session_token;
use crate::store::{self, SessionLimits, SharedStore};

pub const GREETING: &str = "netlab auth server: sign in, or choose a username to register.\n\
                            Session tokens: /token\n\
                            Username:";
/// The greeting for a client that talks in plain lines (nc, telnet), which shows what is
/// typed and cannot keep a token.
pub const PLAIN_TEXT_GREETING: &str = "netlab auth server: sign in, or choose a username to register.\n\
     Careful: nc and telnet show your password as you type it (netlab connect hides it).\n\
     Username:";
/// The answer to `/token` from a client that cannot keep a token.
pub const NO_TOKENS_IN_PLAIN_TEXT: &str =
    "Session tokens need a client that keeps them (netlab connect, framed). Username:";
/// The greeting line that tells a client it may present a session token.
pub const TOKEN_CAPABILITY: &str = "Session tokens: /token";
pub const ASK_USERNAME: &str = "Username:";
pub const ASK_PASSWORD: &str = "Password:";
pub const REPEAT_PASSWORD: &str = "Repeat the password:";
/// Starts the last line of a welcome that carries a new session token.
pub const TOKEN_LINE: &str = "token: ";
/// What a signed-in client may type besides text to echo.
const COMMANDS: [&str; 4] = ["/whoami", "/logout", "/quit", "/help"];
pub const HELP: &str = "Commands: /whoami, /logout (ends your session), /quit, /help. \
                        Anything else comes back.";
pub const BUSY: &str = "The server is busy; please try again in a moment.";
pub const LOGIN_TIMEOUT: &str =
    "error: not signed in within the time allowed; closing the connection";
/// Wrong passwords per connection before it is closed.
pub const MAX_WRONG_PASSWORDS: u8 = 3;
const MAX_USERNAME: usize = 32;

/// Unix seconds; replaceable in tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

#[derive(Clone, Copy, Debug)]
pub struct AuthConfig {
    pub login_timeout: Duration,
    pub sessions: SessionLimits,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            login_timeout: Duration::from_secs(30),
            sessions: SessionLimits {
                idle_secs: 7 * 86400,
                lifetime_secs: 30 * 86400,
            },
        }
    }
}

pub struct Auth {
    store: SharedStore,
    hasher: Hasher,
    config: AuthConfig,
    clock: Clock,
}

impl Auth {
    pub fn new(store: SharedStore, hasher: Hasher, config: AuthConfig) -> Self {
        Auth {
            store,
            hasher,
            config,
            clock: Arc::new(store::now),
        }
    }

    pub fn with_clock(self, clock: Clock) -> Self {
        Auth { clock, ..self }
    }
}

pub struct State {
    peer: SocketAddr,
    /// A plain-text client: no session tokens.
    plain_text: bool,
    phase: Phase,
    wrong_passwords: u8,
    /// The client can keep a session token: give it one at a password sign-in.
    wants_token: bool,
    login_by: Instant,
}

enum Phase {
    Username,
    Password {
        name: String,
    },
    NewPassword {
        name: String,
    },
    RepeatPassword {
        name: String,
        first: Zeroizing<String>,
    },
    SignedIn {
        name: String,
        session: Option<i64>,
        by_token: bool,
    },
}

impl Handler for Auth {
    type State = State;

    async fn greet(&self, peer: &Peer) -> anyhow::Result<(State, Reply)> {
        let state = State {
            peer: peer.addr,
            plain_text: peer.plain_text,
            phase: Phase::Username,
            wrong_passwords: 0,
            wants_token: false,
            login_by: Instant::now() + self.config.login_timeout,
        };
        let greeting = if peer.plain_text {
            PLAIN_TEXT_GREETING
        } else {
            GREETING
        };
        Ok((state, Reply::say(greeting)))
    }

    async fn reply(&self, state: &mut State, message: String) -> anyhow::Result<Reply> {
        let message = Zeroizing::new(message);
        match std::mem::replace(&mut state.phase, Phase::Username) {
            Phase::Username => self.username(state, &message).await,
            Phase::Password { name } => self.password(state, name, message).await,
            Phase::NewPassword { name } => Ok(new_password(state, name, message)),
            Phase::RepeatPassword { name, first } => {
                self.repeat_password(state, name, first, message).await
            }
            Phase::SignedIn {
                name,
                session,
                by_token,
            } => self.command(state, name, session, by_token, &message).await,
        }
    }

    fn deadline(&self, state: &State) -> Option<(Instant, &'static str)> {
        match state.phase {
            Phase::SignedIn { .. } => None,
            _ => Some((state.login_by, LOGIN_TIMEOUT)),
        }
    }

    /// An allow-list, not a block-list: only text known not to be a secret is logged. A
    /// password typed at the username prompt, or after signing in, is not.
    fn may_log(&self, state: &State, message: &str) -> bool {
        match state.phase {
            Phase::Username => check_username(message).is_ok(),
            Phase::SignedIn { .. } => COMMANDS.contains(&message.trim()),
            Phase::Password { .. } | Phase::NewPassword { .. } | Phase::RepeatPassword { .. } => {
                false
            }
        }
    }
}

impl Auth {
    async fn username(&self, state: &mut State, message: &str) -> anyhow::Result<Reply> {
        if message.starts_with("/token") && state.plain_text {
            return Ok(Reply::say(NO_TOKENS_IN_PLAIN_TEXT));
        }
        if let Some(rest) = message.strip_prefix("/token") {
            // Absent, malformed, expired or revoked: the client asked for a token, and
            // it falls back to the password quietly.
            state.wants_token = true;
            let Some(hash) = session_token::hash_of(rest.trim()) else {
                return Ok(Reply::say(ASK_USERNAME));
            };
            let now = (self.clock)();
            let Some((session, name)) = self.store.run(move |s| s.use_session(&hash, now)).await?
            else {
                return Ok(Reply::say(ASK_USERNAME));
            };
            info!("{}: signed in as {name:?} with a session token", state.peer);
            let text =
                format!("Welcome back, {name}! You are signed in with your session token. {HELP}");
            state.phase = Phase::SignedIn {
                name,
                session: Some(session),
                by_token: true,
            };
            return Ok(Reply::say(text));
        }
        if message.starts_with('/') {
            return Ok(Reply::say(format!("Sign in first. {ASK_USERNAME}")));
        }
        let name = match check_username(message) {
            Ok(name) => name.to_owned(),
            Err(reason) => return Ok(Reply::say(format!("{reason}. {ASK_USERNAME}"))),
        };
        let lookup = name.clone();
        match self.store.run(move |s| s.find_user(&lookup)).await? {
            Some(user) => {
                state.phase = Phase::Password { name: user.name };
                Ok(Reply::say(ASK_PASSWORD))
            }
            None => {
                let text = format!(
                    "New user {name}. Choose a password ({} to {} bytes). Password:",
                    password::MIN_LEN,
                    password::MAX_LEN
                );
                state.phase = Phase::NewPassword { name };
                Ok(Reply::say(text))
            }
        }
    }

    async fn password(
        &self,
        state: &mut State,
        name: String,
        attempt: Zeroizing<String>,
    ) -> anyhow::Result<Reply> {
        let lookup = name.clone();
        let Some(user) = self.store.run(move |s| s.find_user(&lookup)).await? else {
            // Deleted while the client was typing.
            return Ok(Reply::say(format!("No such user any more. {ASK_USERNAME}")));
        };
        let now = (self.clock)();
        let locked = user.locked_until > now;
        // A locked account is checked against a dummy hash: the reply and its timing
        // are those of a wrong password.
        let checked = if locked {
            self.hasher.waste(attempt).await
        } else {
            self.hasher
                .verify(attempt, user.password_hash.clone())
                .await
        };
        let verdict = match checked {
            Ok(verdict) => verdict,
            Err(HashError::Busy) => return Ok(Reply::close(BUSY)),
            Err(HashError::OverCeiling(params)) => {
                error!("stored password hash of {name:?} refused unchecked: {params}");
                Verdict::Mismatch
            }
            Err(HashError::Other(e)) => return Err(e),
        };
        if verdict == Verdict::Match {
            let id = user.id;
            self.store.run(move |s| s.record_success(id)).await?;
            info!("{}: signed in as {name:?} with a password", state.peer);
            return self.sign_in(state, user.id, name, "Welcome").await;
        }
        if !locked {
            let id = user.id;
            self.store.run(move |s| s.record_failure(id, now)).await?;
        }
        warn!("{}: wrong password for {name:?}", state.peer);
        state.wrong_passwords += 1;
        if state.wrong_passwords >= MAX_WRONG_PASSWORDS {
            return Ok(Reply::close(
                "Wrong password. Too many failed attempts; goodbye.",
            ));
        }
        state.phase = Phase::Password { name };
        Ok(Reply::say(format!("Wrong password. {ASK_PASSWORD}")))
    }

    async fn repeat_password(
        &self,
        state: &mut State,
        name: String,
        first: Zeroizing<String>,
        repeat: Zeroizing<String>,
    ) -> anyhow::Result<Reply> {
        if *first != *repeat {
            state.phase = Phase::NewPassword { name };
            return Ok(Reply::say("The passwords do not match. Choose a password:"));
        }
        let hash = match self.hasher.hash(first).await {
            Ok(hash) => hash,
            Err(HashError::Busy) => return Ok(Reply::close(BUSY)),
            Err(e) => return Err(e.into()),
        };
        let (now, wanted) = ((self.clock)(), name.clone());
        let Some(user) = self
            .store
            .run(move |s| s.create_user(&wanted, &hash, now))
            .await?
        else {
            return Ok(Reply::say(format!(
                "Someone registered {name} a moment ago. {ASK_USERNAME}"
            )));
        };
        info!("{}: registered {name:?}", state.peer);
        self.sign_in(
            state,
            user.id,
            user.name,
            "Welcome, and thank you for registering",
        )
        .await
    }

    /// Signs the connection in after a password, with a new session token if the client
    /// keeps them: the token goes on the welcome's last line.
    async fn sign_in(
        &self,
        state: &mut State,
        user_id: i64,
        name: String,
        welcome: &str,
    ) -> anyhow::Result<Reply> {
        let mut text = format!("{welcome}, {name}! You are signed in. {HELP}");
        let mut session = None;
        if state.wants_token {
            let (token, hash) = session_token::generate()?;
            let (now, limits) = ((self.clock)(), self.config.sessions);
            let id = self
                .store
                .run(move |s| s.create_session(user_id, &hash, now, limits))
                .await?;
            session = Some(id);
            text.push('\n');
            text.push_str(TOKEN_LINE);
            text.push_str(&token);
        }
        state.phase = Phase::SignedIn {
            name,
            session,
            by_token: false,
        };
        Ok(Reply::say(text))
    }

    async fn command(
        &self,
        state: &mut State,
        name: String,
        session: Option<i64>,
        by_token: bool,
        message: &str,
    ) -> anyhow::Result<Reply> {
        let reply = match message.trim() {
            "/whoami" => Reply::say(format!(
                "You are {name}, signed in with {}.",
                if by_token {
                    "a session token"
                } else {
                    "your password"
                }
            )),
            "/logout" => {
                info!("{}: {name:?} signed out", state.peer);
                let Some(id) = session else {
                    return Ok(Reply::close(format!(
                        "Goodbye, {name}. You are signed out."
                    )));
                };
                self.store.run(move |s| s.revoke_session(id)).await?;
                return Ok(Reply::close(format!(
                    "Goodbye, {name}. You are signed out, and your session token no longer works."
                )));
            }
            "/quit" => return Ok(Reply::close(format!("Goodbye, {name}."))),
            "/help" => Reply::say(HELP),
            other if other.starts_with('/') => {
                Reply::say(format!("Unknown command {other:?}. {HELP}"))
            }
            _ => Reply::say(message),
        };
        state.phase = Phase::SignedIn {
            name,
            session,
            by_token,
        };
        Ok(reply)
    }
}

fn new_password(state: &mut State, name: String, first: Zeroizing<String>) -> Reply {
    if let Err(reason) = password::check_new(&first) {
        state.phase = Phase::NewPassword { name };
        return Reply::say(format!("{reason}. Choose a password:"));
    }
    state.phase = Phase::RepeatPassword { name, first };
    Reply::say(REPEAT_PASSWORD)
}

/// A username: 1 to 32 ASCII letters, digits, '.', '_' or '-'.
pub fn check_username(raw: &str) -> Result<&str, String> {
    let name = raw.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if (1..=MAX_USERNAME).contains(&name.len()) && name.chars().all(allowed) {
        Ok(name)
    } else {
        Err(format!(
            "A username is 1 to {MAX_USERNAME} letters, digits, '.', '_' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    use crate::store::Store;

    struct Fixture {
        auth: Auth,
        time: Arc<AtomicI64>,
    }

    fn fixture() -> Fixture {
        let time = Arc::new(AtomicI64::new(1_000_000));
        let clock = Arc::clone(&time);
        let auth = Auth::new(
            SharedStore::new(Store::open_in_memory().unwrap()),
            Hasher::new(4, 2).unwrap(),
            AuthConfig::default(),
        )
        .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)));
        Fixture { auth, time }
    }

    fn peer() -> Peer {
        Peer {
            addr: "127.0.0.2:40000".parse().unwrap(),
            plain_text: false,
        }
    }

    impl Fixture {
        async fn connect(&self) -> State {
            self.auth.greet(&peer()).await.unwrap().0
        }

        async fn say(&self, state: &mut State, msg: &str) -> Reply {
            self.auth.reply(state, msg.to_owned()).await.unwrap()
        }

        async fn register(&self, name: &str, password: &str) -> String {
            let mut s = self.connect().await;
            self.say(&mut s, "/token").await;
            self.say(&mut s, name).await;
            self.say(&mut s, password).await;
            let welcome = self.say(&mut s, password).await.text;
            welcome.rsplit_once(TOKEN_LINE).unwrap().1.to_owned()
        }

        /// One password login for `name` on a new connection; the reply.
        async fn attempt(&self, name: &str, password: &str) -> String {
            let mut s = self.connect().await;
            self.say(&mut s, name).await;
            self.say(&mut s, password).await.text
        }

        fn advance(&self, secs: i64) {
            self.time.fetch_add(secs, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_token_expires_when_idle_for_seven_days() {
        let f = fixture();
        let token = f.register("alice", "password1").await;

        f.advance(6 * 86400);
        let mut s = f.connect().await;
        let reply = f.say(&mut s, &format!("/token {token}")).await;
        assert!(
            reply.text.starts_with("Welcome back, alice!"),
            "{}",
            reply.text
        );

        // Used at day 6, so it lasts until day 13; at day 14 it is gone.
        f.advance(8 * 86400);
        let mut s = f.connect().await;
        assert_eq!(
            f.say(&mut s, &format!("/token {token}")).await.text,
            ASK_USERNAME
        );
    }

    #[tokio::test]
    async fn a_token_expires_thirty_days_after_its_login_even_if_used() {
        let f = fixture();
        let token = f.register("bob", "password1").await;
        for _ in 0..5 {
            f.advance(5 * 86400);
            let mut s = f.connect().await;
            let reply = f.say(&mut s, &format!("/token {token}")).await;
            assert!(reply.text.starts_with("Welcome back"), "{}", reply.text);
        }
        f.advance(5 * 86400);
        let mut s = f.connect().await;
        assert_eq!(
            f.say(&mut s, &format!("/token {token}")).await.text,
            ASK_USERNAME
        );
    }

    #[tokio::test]
    async fn after_five_failures_each_attempt_waits_twice_as_long() {
        let f = fixture();
        f.register("carol", "password1").await;
        let attempt = |password| f.attempt("carol", password);
        for _ in 0..5 {
            assert!(attempt("wrong-one").await.starts_with("Wrong password"));
        }
        // Locked for 1 s: even the right password is "wrong", and says nothing more.
        assert_eq!(
            attempt("password1").await,
            format!("Wrong password. {ASK_PASSWORD}")
        );
        f.advance(1);
        assert!(attempt("wrong-two").await.starts_with("Wrong password")); // 6th: 2 s
        f.advance(1);
        assert!(attempt("password1").await.starts_with("Wrong password"));
        f.advance(1);
        assert!(attempt("password1").await.starts_with("Welcome, carol!"));
        // Success resets the count.
        assert!(attempt("wrong").await.starts_with("Wrong password"));
        assert!(attempt("password1").await.starts_with("Welcome"));
    }

    #[tokio::test]
    async fn passwords_and_tokens_are_kept_out_of_the_log() {
        let f = fixture();
        let mut s = f.connect().await;
        for secret in ["/token 00ff", " /token 00ff", "my secret passphrase!", "/"] {
            assert!(
                !f.auth.may_log(&s, secret),
                "{secret:?} at the username prompt"
            );
        }
        assert!(f.auth.may_log(&s, "dave"));
        f.say(&mut s, "dave").await;
        assert!(!f.auth.may_log(&s, "my new password"));
        f.say(&mut s, "password1").await;
        assert!(!f.auth.may_log(&s, "password1"));
        f.say(&mut s, "password1").await;
        for command in ["/whoami", " /logout", "/help"] {
            assert!(f.auth.may_log(&s, command), "{command:?}");
        }
        for secret in ["/token 00ff", "password1", "hello"] {
            assert!(!f.auth.may_log(&s, secret), "{secret:?} once signed in");
        }
        assert!(
            f.auth.deadline(&s).is_none(),
            "no login deadline once signed in"
        );
    }

    #[tokio::test]
    async fn a_login_that_finds_hashing_busy_is_told_to_retry_and_closed() {
        // One slot, a costly hash, and a queue wait of 10 ms.
        let hasher = Hasher::new(16, 1)
            .unwrap()
            .with_queue_wait(Duration::from_millis(10));
        let auth = Auth::new(
            SharedStore::new(Store::open_in_memory().unwrap()),
            hasher,
            AuthConfig::default(),
        );
        let mut states = Vec::new();
        for name in ["first", "second"] {
            let mut state = auth.greet(&peer()).await.unwrap().0;
            for answer in [name, "password1"] {
                auth.reply(&mut state, answer.to_owned()).await.unwrap();
            }
            states.push(state);
        }
        let [mut a, mut b] = <[State; 2]>::try_from(states).ok().unwrap();
        // Both repeat their password at once: one hashes, the other finds no slot.
        let (first, second) = tokio::join!(
            auth.reply(&mut a, "password1".to_owned()),
            auth.reply(&mut b, "password1".to_owned()),
        );
        assert!(first.unwrap().text.starts_with("Welcome, and thank you"));
        assert_eq!(second.unwrap(), Reply::close(BUSY));
    }

    #[test]
    fn usernames_are_plain_ascii() {
        assert_eq!(check_username(" alice.b_c-1 "), Ok("alice.b_c-1"));
        for bad in ["", "a b", "алиса", "/token", &"x".repeat(33), "a\tb"] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
    }
}
