//! Users of the authentication server (lab task 8): names, password hashes, and the
//! count of failed logins that slows guessing down.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::Store;

/// Failed logins an account may have before each further attempt must wait.
pub const FREE_FAILURES: i64 = 5;
/// The longest wait between attempts on one account, in seconds.
pub const MAX_LOCK_SECS: i64 = 15 * 60;

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

impl Store {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
