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
//! [`Store`] owns the connection; the SQL for each kind of record lives beside it, one
//! file each: [`clients`], [`users`], [`attempts`] (password attempts and their
//! penalties), [`sessions`]; the schema is in `migrations`.

pub mod attempts;
pub mod clients;
mod migrations;
pub mod sessions;
pub mod users;

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::ErrorKind;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use rusqlite::Connection;

use crate::private_file;

pub use attempts::{Admission, Penalty};
pub use clients::Client;
pub use sessions::{SessionLimits, SessionSummary};
pub use users::{Created, Registrar, User, UserSummary};

/// How long a write waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens the database at `path`, creating it (and its directory) if needed, and
    /// brings its schema up to date.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        // Said plainly, before SQLite says "unable to open database file" or the mode
        // check suggests a chmod for a directory.
        if let Ok(meta) = fs::metadata(path) {
            if meta.is_dir() {
                bail!(
                    "the database {} is a directory; give the path of a file in it, such as {}",
                    path.display(),
                    path.join("netlab.db").display()
                );
            }
            if !meta.is_file() {
                bail!("the database {} is not a regular file", path.display());
            }
        }
        // SQLite keeps the latest writes in -wal and shared state in -shm: each holds
        // password and token hashes as much as the database itself does.
        let companions = [suffixed(path, "-wal"), suffixed(path, "-shm")];
        private_file::refuse_exposed(
            "the database",
            std::iter::once(path).chain(companions.iter().map(PathBuf::as_path)),
        )?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("could not create the directory {}", dir.display()))?;
        }
        // Created private here, whatever the umask: SQLite gives its -wal and -shm files
        // the database's own mode.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("could not create the database {}", path.display()));
            }
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
        migrations::migrate(&mut conn)?;
        Ok(Store { conn })
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

/// `path` with `suffix` added to its file name, as SQLite names its companion files.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
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

#[cfg(test)]
mod tests {
    use super::*;

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
