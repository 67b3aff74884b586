//! Authentication mode (lab task 8): passwords hashed with scrypt, and session tokens
//! that work like cookies.
//!
//! Invariant: no password or token is ever logged, echoed, or stored in clear. Only text
//! known not to be a secret reaches the log ([`Handler::may_log`] is an allow-list),
//! passwords live in zeroized buffers and only their scrypt hash is stored, and of a
//! token only its SHA-256 is stored.
//!
//! And no password is checked unless the database first admitted the attempt
//! ([`crate::store::attempts`]): parallel guesses cannot outrun the penalties, and an
//! attempt refused unchecked costs no hashing, only a pause as long as a check.
//!
//! The conversation, in order: the username (or `/token`, see docs/PROTOCOL.md); then
//! the password of a known user, or a new password twice for a new one; then the user is
//! signed in, and messages are echoed except for the commands in [`HELP`]. A connection
//! that has not signed in within the login timeout is closed, and so is one that gets
//! [`MAX_WRONG_PASSWORDS`] wrong. With closed registration an unknown name is asked for
//! its password like a known one, and answered like a wrong password.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use log::{error, info, warn};
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::{Handler, Peer, Reply};
use crate::credentials::password::{self, HashError, Hasher, Verdict};
use crate::credentials::session_token;
use crate::logging::Throttle;
use crate::store::{
    self, Admission, Created, Penalty, Registrar, SessionLimits, SharedStore, User,
};
use crate::transport::Source;

/// The greeting's first line, by registration policy.
const OPEN_TITLE: &str = "netlab auth server: sign in, or choose a username to register.";
const CLOSED_TITLE: &str = "netlab auth server: sign in.";
/// The greeting line that tells a client it may present a session token.
pub const TOKEN_CAPABILITY: &str = "Session tokens: /token";
/// The greeting line for a client that talks in plain lines (nc, telnet), which shows
/// what is typed and cannot keep a token.
pub const PLAIN_TEXT_WARNING: &str =
    "Careful: nc and telnet show your password as you type it (netlab connect hides it).";
/// The answer to `/token` from a client that cannot keep a token.
pub const NO_TOKENS_IN_PLAIN_TEXT: &str =
    "Session tokens need a client that keeps them (netlab connect, framed). Username:";
pub const ASK_USERNAME: &str = "Username:";
pub const ASK_PASSWORD: &str = "Password:";
pub const WRONG_PASSWORD: &str = "Wrong password. Password:";
pub const REPEAT_PASSWORD: &str = "Repeat the password:";
/// Starts the last line of a welcome that carries a new session token.
pub const TOKEN_LINE: &str = "token: ";
/// What a signed-in client may type besides text to echo.
pub(super) const COMMANDS: [&str; 4] = ["/whoami", "/logout", "/quit", "/help"];
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

/// Who may create an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Registration {
    /// Anyone, by choosing a name that is free (the lab's flow). Choosing a name tells
    /// whether it is taken, as on any site with self-registration.
    Open,
    /// Only an admin (`netlab users add`); signing in reveals nothing about which names
    /// exist.
    Closed,
}

#[derive(Clone, Copy, Debug)]
pub struct AuthConfig {
    pub login_timeout: Duration,
    pub sessions: SessionLimits,
    pub registration: Registration,
    /// Accounts one source may register in an hour.
    pub registrations_per_hour: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            login_timeout: Duration::from_secs(30),
            sessions: SessionLimits {
                idle_secs: 7 * 86400,
                lifetime_secs: 30 * 86400,
            },
            registration: Registration::Open,
            registrations_per_hour: 10,
        }
    }
}

pub struct Auth {
    store: SharedStore,
    hasher: Hasher,
    config: AuthConfig,
    clock: Clock,
    /// Attempts refused unchecked are logged once a minute per source.
    refusals: Throttle<Source>,
}

impl Auth {
    pub fn new(store: SharedStore, hasher: Hasher, config: AuthConfig) -> Self {
        Auth {
            store,
            hasher,
            config,
            clock: Arc::new(store::now),
            refusals: Throttle::new(Duration::from_secs(60)),
        }
    }

    pub fn with_clock(self, clock: Clock) -> Self {
        Auth { clock, ..self }
    }
}

pub struct State {
    peer: SocketAddr,
    source: Source,
    /// A plain-text client: no session tokens.
    plain_text: bool,
    phase: Phase,
    wrong_passwords: u8,
    /// The client can keep a session token: give it one at a password sign-in.
    wants_token: bool,
    login_by: Instant,
}

impl State {
    /// The signed-in user's name.
    pub fn user(&self) -> Option<&str> {
        match &self.phase {
            Phase::SignedIn { name, .. } => Some(name),
            _ => None,
        }
    }
}

enum Phase {
    Username,
    /// A known name, or with closed registration any well-formed one.
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
            source: Source::of(peer.addr.ip()),
            plain_text: peer.plain_text,
            phase: Phase::Username,
            wrong_passwords: 0,
            wants_token: false,
            login_by: Instant::now() + self.config.login_timeout,
        };
        Ok((state, Reply::say(self.greeting(peer.plain_text))))
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
    /// The title, then what this client can do: keep a token, or not hide passwords.
    pub fn greeting(&self, plain_text: bool) -> String {
        let title = match self.config.registration {
            Registration::Open => OPEN_TITLE,
            Registration::Closed => CLOSED_TITLE,
        };
        let middle = if plain_text {
            PLAIN_TEXT_WARNING
        } else {
            TOKEN_CAPABILITY
        };
        format!("{title}\n{middle}\n{ASK_USERNAME}")
    }

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
        let known = self.store.run(move |s| s.find_user(&lookup)).await?;
        match (known, self.config.registration) {
            (Some(user), _) => {
                state.phase = Phase::Password { name: user.name };
                Ok(Reply::say(ASK_PASSWORD))
            }
            // The same question as for a known name: nothing to learn from it.
            (None, Registration::Closed) => {
                state.phase = Phase::Password { name };
                Ok(Reply::say(ASK_PASSWORD))
            }
            (None, Registration::Open) => {
                let (source, now) = (state.source.to_string(), (self.clock)());
                let registered = self
                    .store
                    .run(move |s| s.registrations_from(&source, now))
                    .await?;
                if registered >= i64::from(self.config.registrations_per_hour) {
                    return Ok(Reply::say(self.over_registration_limit()));
                }
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

    fn over_registration_limit(&self) -> String {
        format!(
            "This address has registered {} accounts in the last hour, as many as it may; \
             sign in, or try again later. {ASK_USERNAME}",
            self.config.registrations_per_hour
        )
    }

    async fn password(
        &self,
        state: &mut State,
        name: String,
        attempt: Zeroizing<String>,
    ) -> anyhow::Result<Reply> {
        let lookup = name.clone();
        // None: a name with no account (closed registration), or one deleted meanwhile.
        let user: Option<User> = self.store.run(move |s| s.find_user(&lookup)).await?;
        let (user_id, source, now) = (user.as_ref().map(|u| u.id), state.source, (self.clock)());
        let admission = self
            .store
            .run(move |s| s.admit_attempt(user_id, &source.to_string(), now))
            .await?;
        if let Admission::Refused { until, penalty } = admission {
            if self.refusals.allow(source) {
                let what = match penalty {
                    Penalty::Source => "this address",
                    Penalty::Account => "the account",
                };
                info!(
                    "{source}: password attempts on {name:?} refused unchecked: {what} \
                     must wait {}s more (logged once a minute per address)",
                    until - now
                );
            }
            self.hasher.pause_like_a_check().await;
            return Ok(wrong_password(state, name));
        }
        let checked = match &user {
            Some(user) => {
                let stored = user.password_hash.clone();
                self.hasher.verify(attempt, stored, source, user.id).await
            }
            None => self.hasher.waste(attempt, source).await,
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
        match (verdict, user) {
            (Verdict::Match, Some(user)) => {
                let source = source.to_string();
                self.store
                    .run(move |s| s.record_success(user.id, &source))
                    .await?;
                info!("{}: signed in as {name:?} with a password", state.peer);
                self.sign_in(state, user.id, name, "Welcome").await
            }
            _ => {
                warn!("{}: wrong password for {name:?}", state.peer);
                Ok(wrong_password(state, name))
            }
        }
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
        let hash = match self.hasher.hash(first, state.source).await {
            Ok(hash) => hash,
            Err(HashError::Busy) => return Ok(Reply::close(BUSY)),
            Err(e) => return Err(e.into()),
        };
        let (now, wanted, source) = ((self.clock)(), name.clone(), state.source.to_string());
        let per_hour = self.config.registrations_per_hour;
        let created = self
            .store
            .run(move |s| {
                let by = Registrar::Source {
                    source: &source,
                    per_hour,
                };
                s.create_user(&wanted, &hash, now, by)
            })
            .await?;
        let user = match created {
            Created::User(user) => user,
            Created::Taken => {
                return Ok(Reply::say(format!(
                    "Someone registered {name} a moment ago. {ASK_USERNAME}"
                )));
            }
            Created::OverLimit => return Ok(Reply::say(self.over_registration_limit())),
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

/// The answer to a wrong password, and to an attempt refused unchecked: the same words.
fn wrong_password(state: &mut State, name: String) -> Reply {
    state.wrong_passwords += 1;
    if state.wrong_passwords >= MAX_WRONG_PASSWORDS {
        return Reply::close("Wrong password. Too many failed attempts; goodbye.");
    }
    state.phase = Phase::Password { name };
    Reply::say(WRONG_PASSWORD)
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
        auth: Arc<Auth>,
        time: Arc<AtomicI64>,
    }

    fn fixture_with(config: AuthConfig) -> Fixture {
        let time = Arc::new(AtomicI64::new(1_000_000));
        let clock = Arc::clone(&time);
        let auth = Auth::new(
            SharedStore::new(Store::open_in_memory().unwrap()),
            Hasher::new(4, 2).unwrap(),
            config,
        )
        .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)));
        Fixture {
            auth: Arc::new(auth),
            time,
        }
    }

    fn fixture() -> Fixture {
        fixture_with(AuthConfig::default())
    }

    fn peer_at(ip: &str) -> Peer {
        Peer {
            addr: SocketAddr::new(ip.parse().unwrap(), 40000),
            local_port: 9090,
            plain_text: false,
        }
    }

    impl Fixture {
        async fn connect_from(&self, ip: &str) -> State {
            self.auth.greet(&peer_at(ip)).await.unwrap().0
        }

        async fn connect(&self) -> State {
            self.connect_from("127.0.0.2").await
        }

        async fn say(&self, state: &mut State, msg: &str) -> Reply {
            self.auth.reply(state, msg.to_owned()).await.unwrap()
        }

        async fn register(&self, name: &str, password: &str) -> String {
            let mut s = self.connect_from("127.0.0.9").await;
            self.say(&mut s, "/token").await;
            self.say(&mut s, name).await;
            self.say(&mut s, password).await;
            let welcome = self.say(&mut s, password).await.text;
            welcome.rsplit_once(TOKEN_LINE).unwrap().1.to_owned()
        }

        /// One password login for `name` from `ip` on a new connection; the reply.
        async fn attempt_from(&self, ip: &str, name: &str, password: &str) -> String {
            let mut s = self.connect_from(ip).await;
            self.say(&mut s, name).await;
            self.say(&mut s, password).await.text
        }

        async fn attempt(&self, name: &str, password: &str) -> String {
            self.attempt_from("127.0.0.2", name, password).await
        }

        fn advance(&self, secs: i64) {
            self.time.fetch_add(secs, Ordering::SeqCst);
        }

        async fn failures_of(&self, name: &str) -> i64 {
            let name = name.to_owned();
            let user = self.auth.store.run(move |s| s.find_user(&name)).await;
            user.unwrap().unwrap().failures
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
            assert_eq!(attempt("wrong-one").await, WRONG_PASSWORD);
        }
        // Waiting 1 s: even the right password is "wrong", and says nothing more.
        assert_eq!(attempt("password1").await, WRONG_PASSWORD);
        f.advance(1);
        assert_eq!(attempt("wrong-two").await, WRONG_PASSWORD); // 6th: 2 s
        f.advance(1);
        assert_eq!(attempt("password1").await, WRONG_PASSWORD);
        f.advance(1);
        assert!(attempt("password1").await.starts_with("Welcome, carol!"));
        // Success resets the count.
        assert_eq!(attempt("wrong").await, WRONG_PASSWORD);
        assert!(attempt("password1").await.starts_with("Welcome"));
    }

    /// The race the penalties must not lose: a burst of guesses the moment a wait ends,
    /// each on its own connection. One is checked; the rest, the right password among
    /// them, are refused without a hash.
    #[tokio::test]
    async fn a_hundred_parallel_guesses_in_one_window_get_one_check() {
        let f = fixture();
        f.register("dora", "password1").await;
        for _ in 0..5 {
            assert_eq!(f.attempt("dora", "wrong-one").await, WRONG_PASSWORD);
        }
        f.advance(1);
        let hashes_before = f.auth.hasher.hashes();
        let mut states = Vec::new();
        for _ in 0..100 {
            let mut s = f.connect().await;
            assert_eq!(f.say(&mut s, "dora").await.text, ASK_PASSWORD);
            states.push(s);
        }
        let burst = states.into_iter().enumerate().map(|(i, mut s)| {
            let auth = Arc::clone(&f.auth);
            tokio::spawn(async move {
                let guess = if i == 99 { "password1" } else { "wrong-guess" };
                auth.reply(&mut s, guess.to_owned()).await.unwrap().text
            })
        });
        let replies: Vec<String> = futures_join(burst).await;
        assert!(replies.iter().all(|r| r == WRONG_PASSWORD), "{replies:?}");
        assert_eq!(f.auth.hasher.hashes() - hashes_before, 1, "one real check");
        let source_failures = f
            .auth
            .store
            .run(|s| s.source_failures("127.0.0.2"))
            .await
            .unwrap();
        assert_eq!(source_failures, 6, "one more recorded failure");
    }

    async fn futures_join<T: Send + 'static>(
        tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
    ) -> Vec<T> {
        let mut out = Vec::new();
        for task in tasks.collect::<Vec<_>>() {
            out.push(task.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_guesser_elsewhere_does_not_lock_the_owner_out() {
        let f = fixture();
        f.register("erin", "password1").await;
        // Far past the account's own threshold, as fast as the guesser's penalty allows.
        for _ in 0..40 {
            f.attempt_from("127.0.0.2", "erin", "wrong-guess").await;
            f.advance(900);
        }
        assert_eq!(f.failures_of("erin").await, 5, "the guesser's share only");
        let owner = f.attempt_from("127.0.0.3", "erin", "password1").await;
        assert!(owner.starts_with("Welcome, erin!"), "{owner}");
    }

    #[tokio::test]
    async fn closed_registration_answers_unknown_names_as_known_ones() {
        let f = fixture_with(AuthConfig {
            registration: Registration::Closed,
            ..AuthConfig::default()
        });
        let hash = f
            .auth
            .hasher
            .hash(
                Zeroizing::new("password1".into()),
                Source::of([127, 0, 0, 1].into()),
            )
            .await
            .unwrap();
        f.auth
            .store
            .run(move |s| s.create_user("fred", &hash, 0, Registrar::Admin))
            .await
            .unwrap();
        // From two addresses, so that neither meets the other's penalty.
        let conversation = |name: &'static str, ip: &'static str| {
            let f = &f;
            async move {
                let (mut s, greeting) = f.auth.greet(&peer_at(ip)).await.unwrap();
                let mut said = vec![greeting.text];
                for message in [name, "wrong-one", "wrong-two", "wrong-three"] {
                    said.push(f.say(&mut s, message).await.text);
                }
                said
            }
        };
        let hashes_before = f.auth.hasher.hashes();
        let known = conversation("fred", "127.0.0.2").await;
        let unknown = conversation("nobody", "127.0.0.3").await;
        assert_eq!(known, unknown);
        assert_eq!(
            known[0],
            format!("{CLOSED_TITLE}\n{TOKEN_CAPABILITY}\n{ASK_USERNAME}")
        );
        assert_eq!(known[1], ASK_PASSWORD);
        assert_eq!(
            f.auth.hasher.hashes() - hashes_before,
            6,
            "each attempt checked alike"
        );
        assert!(
            f.attempt("fred", "password1")
                .await
                .starts_with("Welcome, fred!")
        );
    }

    #[tokio::test]
    async fn one_source_registers_at_most_its_limit_per_hour() {
        let f = fixture_with(AuthConfig {
            registrations_per_hour: 2,
            ..AuthConfig::default()
        });
        let register = |name: &'static str, ip: &'static str| {
            let f = &f;
            async move {
                let mut s = f.connect_from(ip).await;
                let asked = f.say(&mut s, name).await.text;
                if !asked.starts_with("New user") {
                    return asked;
                }
                f.say(&mut s, "password1").await;
                f.say(&mut s, "password1").await.text
            }
        };
        assert!(
            register("gus", "127.0.0.2")
                .await
                .starts_with("Welcome, and thank")
        );
        assert!(
            register("hal", "127.0.0.2")
                .await
                .starts_with("Welcome, and thank")
        );
        let third = register("ivy", "127.0.0.2").await;
        assert!(
            third.starts_with("This address has registered 2 accounts"),
            "{third}"
        );
        assert!(
            register("ivy", "127.0.0.3")
                .await
                .starts_with("Welcome, and thank")
        );
        f.advance(3601);
        assert!(
            register("jan", "127.0.0.2")
                .await
                .starts_with("Welcome, and thank")
        );
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
        // From two sources: it is the one slot, not a source's turn, that is busy.
        for (name, ip) in [("first", "127.0.0.2"), ("second", "127.0.0.3")] {
            let mut state = auth.greet(&peer_at(ip)).await.unwrap().0;
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
