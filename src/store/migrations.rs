//! The schema: the numbered SQL files in `migrations/`, applied in order in one
//! transaction and counted in `PRAGMA user_version`.
//!
//! Invariant: never edit or reorder a migration that has been released; add a new one.
//! A database whose version is newer than this list is refused, not downgraded.

use anyhow::{Context, bail};
use rusqlite::{Connection, TransactionBehavior};

/// The schema, oldest first. Each file's number is its position in this list.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_clients.sql",
        include_str!("../../migrations/0001_clients.sql"),
    ),
    (
        "0002_auth.sql",
        include_str!("../../migrations/0002_auth.sql"),
    ),
    (
        "0003_penalties.sql",
        include_str!("../../migrations/0003_penalties.sql"),
    ),
];

/// Applies the migrations this database has not seen, all in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
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
    use std::path::Path;

    use super::*;
    use crate::store::Store;

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
        // Private, as netlab makes its own databases, so that only the version is wrong.
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o600);
        std::fs::set_permissions(&path, private).unwrap();
        let err = format!("{:#}", Store::open(&path).err().unwrap());
        assert!(err.contains("newer than this netlab knows"), "{err}");
    }
}
