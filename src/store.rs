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
const MIGRATIONS: &[(&str, &str)] = &[(
    "0001_clients.sql",
    include_str!("../migrations/0001_clients.sql"),
)];

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
