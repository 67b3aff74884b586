//! Everything netlab remembers, in one SQLite file shared by the server modes and the
//! admin commands.
//!
//! Invariant: every write is one `BEGIN IMMEDIATE` transaction, committed with
//! `synchronous = FULL` before the caller is told it happened. A deferred transaction
//! that reads first and then writes fails with "database is locked" when another
//! writer got in between; an immediate one takes the write lock up front and waits for
//! it (up to the busy timeout), so concurrent writers queue instead of failing. And what
//! a client has been told is stored survives a crash or a power cut.
//!
//! A [`Store`] does blocking I/O: async code reaches it through [`SharedStore`], which
//! runs every call on the blocking thread pool.
//!
//! The schema is the numbered files in `migrations/`, applied in order in one
//! transaction and counted in `PRAGMA user_version`. Never edit or reorder a migration
//! that has been released: add a new one.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

/// The schema, oldest first. Each file's number is its position in this list.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_clients.sql",
        include_str!("../migrations/0001_clients.sql"),
    ),
    ("0002_auth.sql", include_str!("../migrations/0002_auth.sql")),
];

/// Failed logins an account may have before each further attempt must wait.
pub const FREE_FAILURES: i64 = 5;
/// The longest wait between attempts on one account, in seconds.
pub const MAX_LOCK_SECS: i64 = 15 * 60;

/// How long a write waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of the identification server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Client {
    pub ip: IpAddr,
    pub name: String,
    /// Unix seconds.
    pub first_seen: i64,
    pub last_seen: i64,
    pub visits: i64,
}

/// A user of the authentication server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub password_hash: String,
    pub created_at: i64,
    pub failures: i64,
    pub locked_until: i64,
}

/// A user as the admin commands show it: no password hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    pub name: String,
    pub created_at: i64,
    pub sessions: i64,
    pub failures: i64,
    pub locked_until: i64,
}

/// An open session as the admin commands show it: never the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    pub user: String,
    pub created_at: i64,
    pub last_used: i64,
    /// When it ends if unused: the earlier of the idle and the absolute expiry.
    pub ends_at: i64,
}

/// How long sessions last.
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    pub idle_secs: i64,
    pub lifetime_secs: i64,
}

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens the database at `path`, creating it (and its directory) if needed, and
    /// brings its schema up to date.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("could not create the directory {}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("could not open the database {}", path.display()))?;
        Store::set_up(conn)
            .with_context(|| format!("could not use the database {}", path.display()))
    }

    /// Opens an existing database only: for admin commands, where a mistyped path
    /// should be an error rather than a new empty database.
    pub fn open_existing(path: &Path) -> anyhow::Result<Store> {
        if !path.exists() {
            bail!(
                "no database at {} (a server creates it when it first starts)",
                path.display()
            );
        }
        Store::open(path)
    }

    /// A private database in memory, for tests.
    pub fn open_in_memory() -> anyhow::Result<Store> {
        Store::set_up(Connection::open_in_memory()?)
    }

    fn set_up(mut conn: Connection) -> anyhow::Result<Store> {
        // Per-connection settings; they do nothing inside the migration transaction, so
        // they come first.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrate(&mut conn)?;
        Ok(Store { conn })
    }

    /// The client at `ip`, if it is known.
    pub fn find_client(&self, ip: IpAddr) -> anyhow::Result<Option<Client>> {
        Ok(self
            .conn
            .query_row(
                "SELECT ip, name, first_seen, last_seen, visits FROM clients WHERE ip = ?1",
                [canonical(ip).to_string()],
                client_from_row,
            )
            .optional()?)
    }

    /// Counts a new visit of the client at `ip`, if it is known, and returns it.
    pub fn record_visit(&mut self, ip: IpAddr, now: i64) -> anyhow::Result<Option<Client>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let client = tx
            .query_row(
                "UPDATE clients SET visits = visits + 1, last_seen = ?2 WHERE ip = ?1
                 RETURNING ip, name, first_seen, last_seen, visits",
                params![canonical(ip).to_string(), now],
                client_from_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(client)
    }

    /// Names the client at `ip`: a new client on its first visit, or a new name for a
    /// known one (which keeps its history).
    pub fn name_client(&mut self, ip: IpAddr, name: &str, now: i64) -> anyhow::Result<Client> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let client = tx.query_row(
            "INSERT INTO clients (ip, name, first_seen, last_seen, visits)
             VALUES (?1, ?2, ?3, ?3, 1)
             ON CONFLICT (ip) DO UPDATE SET name = excluded.name, last_seen = excluded.last_seen
             RETURNING ip, name, first_seen, last_seen, visits",
            params![canonical(ip).to_string(), name, now],
            client_from_row,
        )?;
        tx.commit()?;
        Ok(client)
    }

    /// All known clients, most recently seen first.
    pub fn list_clients(&self) -> anyhow::Result<Vec<Client>> {
        let mut stmt = self.conn.prepare(
            "SELECT ip, name, first_seen, last_seen, visits FROM clients
             ORDER BY last_seen DESC, ip",
        )?;
        let clients = stmt
            .query_map([], client_from_row)?
            .collect::<Result<_, _>>()?;
        Ok(clients)
    }

    /// Forgets the client at `ip`; returns it if it was known.
    pub fn forget_client(&mut self, ip: IpAddr) -> anyhow::Result<Option<Client>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let client = tx
            .query_row(
                "DELETE FROM clients WHERE ip = ?1
                 RETURNING ip, name, first_seen, last_seen, visits",
                [canonical(ip).to_string()],
                client_from_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(client)
    }

    pub fn find_user(&self, name: &str) -> anyhow::Result<Option<User>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, password_hash, created_at, failures, locked_until
                 FROM users WHERE name = ?1",
                [name],
                user_from_row,
            )
            .optional()?)
    }

    /// Creates a user; `None` if the name was taken in the meantime.
    pub fn create_user(
        &mut self,
        name: &str,
        password_hash: &str,
        now: i64,
    ) -> anyhow::Result<Option<User>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let user = tx
            .query_row(
                "INSERT INTO users (name, password_hash, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO NOTHING
                 RETURNING id, name, password_hash, created_at, failures, locked_until",
                params![name, password_hash, now],
                user_from_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(user)
    }

    /// Counts a failed password login. From the [`FREE_FAILURES`]th failure on, no
    /// password is checked for a while: 1 s, then twice as long after each further
    /// failure, at most [`MAX_LOCK_SECS`]. Returns the new lock time.
    pub fn record_failure(&mut self, user_id: i64, now: i64) -> anyhow::Result<i64> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let failures: i64 = tx.query_row(
            "UPDATE users SET failures = failures + 1 WHERE id = ?1 RETURNING failures",
            [user_id],
            |row| row.get(0),
        )?;
        let locked_until = match failures - FREE_FAILURES {
            n if n < 0 => 0,
            n => {
                now + 1i64
                    .checked_shl(n as u32)
                    .map_or(MAX_LOCK_SECS, |s| s.min(MAX_LOCK_SECS))
            }
        };
        tx.execute(
            "UPDATE users SET locked_until = ?2 WHERE id = ?1",
            params![user_id, locked_until],
        )?;
        tx.commit()?;
        Ok(locked_until)
    }

    /// Clears the failure count after a successful login.
    pub fn record_success(&mut self, user_id: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE users SET failures = 0, locked_until = 0 WHERE id = ?1",
            [user_id],
        )?;
        Ok(())
    }

    /// Opens a session for `user_id`, known by the hash of its token.
    pub fn create_session(
        &mut self,
        user_id: i64,
        token_hash: &[u8],
        now: i64,
        limits: SessionLimits,
    ) -> anyhow::Result<i64> {
        self.conn.execute(
            "INSERT INTO sessions (user_id, token_hash, created_at, last_used, idle_limit, expires_at)
             VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
            params![
                user_id,
                token_hash,
                now,
                limits.idle_secs,
                now.saturating_add(limits.lifetime_secs)
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The session with this token hash, if it is still valid at `now`: its id and its
    /// user's name. Using a session renews its idle expiry; an expired one is deleted.
    pub fn use_session(
        &mut self,
        token_hash: &[u8],
        now: i64,
    ) -> anyhow::Result<Option<(i64, String)>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = tx
            .query_row(
                "SELECT s.id, u.name, s.last_used + s.idle_limit > ?2 AND s.expires_at > ?2
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1",
                params![token_hash, now],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, bool>(2)?,
                    ))
                },
            )
            .optional()?;
        let session = match found {
            Some((id, name, true)) => {
                tx.execute(
                    "UPDATE sessions SET last_used = ?2 WHERE id = ?1",
                    params![id, now],
                )?;
                Some((id, name))
            }
            Some((id, _, false)) => {
                tx.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
                None
            }
            None => None,
        };
        tx.commit()?;
        Ok(session)
    }

    /// Ends one session.
    pub fn revoke_session(&mut self, session_id: i64) -> anyhow::Result<()> {
        self.conn
            .execute("DELETE FROM sessions WHERE id = ?1", [session_id])?;
        Ok(())
    }

    /// Ends every session of a user; returns how many there were, or `None` if there is
    /// no such user.
    pub fn revoke_sessions_of(&mut self, name: &str) -> anyhow::Result<Option<usize>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(user_id) = tx
            .query_row("SELECT id FROM users WHERE name = ?1", [name], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
        else {
            return Ok(None);
        };
        let n = tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
        tx.commit()?;
        Ok(Some(n))
    }

    /// Deletes a user and, with it, all of its sessions.
    pub fn delete_user(&mut self, name: &str) -> anyhow::Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM users WHERE name = ?1", [name])?;
        Ok(n > 0)
    }

    pub fn list_users(&self, now: i64) -> anyhow::Result<Vec<UserSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT u.name, u.created_at, u.failures, u.locked_until,
                    (SELECT count(*) FROM sessions s WHERE s.user_id = u.id
                       AND s.last_used + s.idle_limit > ?1 AND s.expires_at > ?1)
             FROM users u ORDER BY u.name",
        )?;
        let users = stmt
            .query_map([now], |row| {
                Ok(UserSummary {
                    name: row.get(0)?,
                    created_at: row.get(1)?,
                    failures: row.get(2)?,
                    locked_until: row.get(3)?,
                    sessions: row.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(users)
    }

    /// Sessions still valid at `now`, newest first.
    pub fn list_sessions(&self, now: i64) -> anyhow::Result<Vec<SessionSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT u.name, s.created_at, s.last_used, min(s.last_used + s.idle_limit, s.expires_at)
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.last_used + s.idle_limit > ?1 AND s.expires_at > ?1
             ORDER BY s.created_at DESC, s.id DESC",
        )?;
        let sessions = stmt
            .query_map([now], |row| {
                Ok(SessionSummary {
                    user: row.get(0)?,
                    created_at: row.get(1)?,
                    last_used: row.get(2)?,
                    ends_at: row.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(sessions)
    }

    /// `PRAGMA integrity_check`: "ok", or what is wrong.
    pub fn integrity_check(&self) -> anyhow::Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))?)
    }
}

/// A [`Store`] for async code: each call runs on the blocking thread pool, never on an
/// async worker thread. Calls take turns on one connection; each is a few milliseconds
/// at most, so turns are short.
#[derive(Clone)]
pub struct SharedStore {
    store: Arc<Mutex<Store>>,
}

impl SharedStore {
    pub fn new(store: Store) -> Self {
        SharedStore {
            store: Arc::new(Mutex::new(store)),
        }
    }

    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            // A panic inside a call cannot leave a transaction open (it rolls back on
            // drop), so a poisoned lock still guards a usable connection.
            let mut store = store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut store)
        })
        .await
        .context("database task failed")?
    }
}

/// The default database file: `<data dir>/netlab/netlab.db`.
pub fn default_path() -> anyhow::Result<PathBuf> {
    let Some(data) = dirs::data_dir() else {
        bail!("no data directory for this user (is HOME set?); name a database with --db");
    };
    Ok(data.join("netlab").join("netlab.db"))
}

/// The address a client is known by: an IPv4 client of a dual-stack listener arrives as
/// `::ffff:a.b.c.d` and is the same client as `a.b.c.d`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().try_into().unwrap_or(i64::MAX))
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        name: row.get(1)?,
        password_hash: row.get(2)?,
        created_at: row.get(3)?,
        failures: row.get(4)?,
        locked_until: row.get(5)?,
    })
}

fn client_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Client> {
    let ip: String = row.get(0)?;
    Ok(Client {
        ip: ip.parse().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?,
        name: row.get(1)?,
        first_seen: row.get(2)?,
        last_seen: row.get(3)?,
        visits: row.get(4)?,
    })
}

/// Applies the migrations this database has not seen, all in one transaction.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let applied = usize::try_from(version).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        bail!(
            "the database has schema version {version}, newer than this netlab knows ({}); \
             use a newer netlab",
            MIGRATIONS.len()
        );
    }
    for (name, sql) in &MIGRATIONS[applied..] {
        tx.execute_batch(sql)
            .with_context(|| format!("migration {name} failed"))?;
    }
    // PRAGMA takes no bound parameters; the value is a count, not user input.
    tx.execute_batch(&format!("PRAGMA user_version = {}", MIGRATIONS.len()))?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn migrations_are_numbered_in_order_and_all_listed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            files, listed,
            "every file in migrations/ is listed, in order"
        );
        for (i, name) in listed.iter().enumerate() {
            assert!(
                name.starts_with(&format!("{:04}_", i + 1)),
                "{name} is out of sequence"
            );
        }
    }

    #[test]
    fn migrations_apply_to_a_fresh_database_and_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("netlab.db");
        Store::open(&path).unwrap();
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(store.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netlab.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 999")
            .unwrap();
        let err = format!("{:#}", Store::open(&path).err().unwrap());
        assert!(err.contains("newer than this netlab knows"), "{err}");
    }

    #[test]
    fn a_client_is_named_then_visits() {
        let mut store = Store::open_in_memory().unwrap();
        assert_eq!(store.record_visit(ip("127.0.0.2"), 100).unwrap(), None);
        let alice = store.name_client(ip("127.0.0.2"), "Alice", 100).unwrap();
        assert_eq!((alice.visits, alice.first_seen), (1, 100));
        let again = store.record_visit(ip("127.0.0.2"), 250).unwrap().unwrap();
        assert_eq!(again.name, "Alice");
        assert_eq!(
            (again.visits, again.first_seen, again.last_seen),
            (2, 100, 250)
        );
        assert_eq!(store.find_client(ip("127.0.0.3")).unwrap(), None);
    }

    #[test]
    fn an_ipv4_mapped_address_is_the_ipv4_client() {
        let mut store = Store::open_in_memory().unwrap();
        store.name_client(ip("::ffff:127.0.0.2"), "Bob", 1).unwrap();
        let bob = store.find_client(ip("127.0.0.2")).unwrap().unwrap();
        assert_eq!(bob.ip, ip("127.0.0.2"));
        assert_eq!(store.list_clients().unwrap().len(), 1);
    }

    #[test]
    fn forgetting_returns_the_client_once() {
        let mut store = Store::open_in_memory().unwrap();
        store.name_client(ip("::1"), "Carol", 1).unwrap();
        assert_eq!(
            store.forget_client(ip("::1")).unwrap().unwrap().name,
            "Carol"
        );
        assert_eq!(store.forget_client(ip("::1")).unwrap(), None);
        assert!(store.list_clients().unwrap().is_empty());
    }

    const LIMITS: SessionLimits = SessionLimits {
        idle_secs: 7 * 86400,
        lifetime_secs: 30 * 86400,
    };

    #[test]
    fn usernames_are_unique_whatever_the_case() {
        let mut store = Store::open_in_memory().unwrap();
        assert!(store.create_user("Alice", "$h", 1).unwrap().is_some());
        assert!(store.create_user("alice", "$h", 1).unwrap().is_none());
        assert_eq!(store.find_user("ALICE").unwrap().unwrap().name, "Alice");
    }

    #[test]
    fn failures_lock_an_account_for_twice_as_long_each_time() {
        let mut store = Store::open_in_memory().unwrap();
        let id = store.create_user("bob", "$h", 0).unwrap().unwrap().id;
        let locks: Vec<i64> = (0..16)
            .map(|_| store.record_failure(id, 1000).unwrap())
            .collect();
        assert_eq!(&locks[..4], &[0, 0, 0, 0], "the first four are free");
        let waits: Vec<i64> = locks[4..].iter().map(|l| l - 1000).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]);
        store.record_success(id).unwrap();
        let bob = store.find_user("bob").unwrap().unwrap();
        assert_eq!((bob.failures, bob.locked_until), (0, 0));
    }

    #[test]
    fn sessions_end_when_idle_or_old_and_renew_on_use() {
        let mut store = Store::open_in_memory().unwrap();
        let id = store.create_user("carol", "$h", 0).unwrap().unwrap().id;
        let day = 86400;
        store.create_session(id, b"idle", 0, LIMITS).unwrap();
        store.create_session(id, b"used", 0, LIMITS).unwrap();
        // Six days on, both are valid; "used" is used, which renews its idle expiry.
        assert!(store.use_session(b"used", 6 * day).unwrap().is_some());
        // Eight days on, "idle" has expired; "used" was last used two days ago.
        assert_eq!(store.use_session(b"idle", 8 * day).unwrap(), None);
        assert_eq!(
            store.use_session(b"used", 8 * day).unwrap().unwrap().1,
            "carol"
        );
        // Used every few days, it still ends 30 days after it began.
        for d in [14, 20, 26, 29] {
            assert!(
                store.use_session(b"used", d * day).unwrap().is_some(),
                "day {d}"
            );
        }
        assert_eq!(store.use_session(b"used", 30 * day).unwrap(), None);
        assert!(store.list_sessions(30 * day).unwrap().is_empty());
    }

    #[test]
    fn deleting_a_user_ends_its_sessions() {
        let mut store = Store::open_in_memory().unwrap();
        let id = store.create_user("dave", "$h", 0).unwrap().unwrap().id;
        store.create_session(id, b"t1", 0, LIMITS).unwrap();
        store.create_session(id, b"t2", 0, LIMITS).unwrap();
        assert_eq!(store.list_users(0).unwrap()[0].sessions, 2);
        assert_eq!(store.revoke_sessions_of("nobody").unwrap(), None);
        assert!(store.delete_user("dave").unwrap());
        assert_eq!(store.use_session(b"t1", 1).unwrap(), None);
        assert!(store.list_sessions(1).unwrap().is_empty());
    }

    #[test]
    fn concurrent_writers_on_one_file_all_succeed() {
        // Separate connections, as separate processes would have: BEGIN IMMEDIATE makes
        // them queue on the write lock instead of failing with "database is locked".
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netlab.db");
        Store::open(&path).unwrap();
        let writers: Vec<_> = (0..4u8)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut store = Store::open(&path).unwrap();
                    for i in 0..50u8 {
                        let ip = IpAddr::from([127, w, 0, i]);
                        store.record_visit(ip, 1).unwrap();
                        store.name_client(ip, &format!("w{w}c{i}"), 1).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(
            Store::open(&path).unwrap().list_clients().unwrap().len(),
            200
        );
    }
}
