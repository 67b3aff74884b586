//! Users of the authentication server (lab task 8): names, password hashes, and where
//! each account was registered from. Failed attempts are counted in [`super::attempts`].

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::Store;

/// Who creates an account.
#[derive(Clone, Copy, Debug)]
pub enum Registrar<'a> {
    /// `netlab users add`: no limit.
    Admin,
    /// A client registering itself from `source`, which may create at most `per_hour`
    /// accounts in an hour.
    Source { source: &'a str, per_hour: u32 },
}

/// What [`Store::create_user`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    User(User),
    /// Someone has the name already.
    Taken,
    /// The source has registered as many accounts as it may this hour.
    OverLimit,
}

impl Created {
    pub fn user(self) -> Option<User> {
        match self {
            Created::User(user) => Some(user),
            Created::Taken | Created::OverLimit => None,
        }
    }
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

    /// Creates a user, unless the name is taken or the registrar is over its limit: both
    /// checked in the transaction that inserts, so parallel registrations cannot slip
    /// past either.
    pub fn create_user(
        &mut self,
        name: &str,
        password_hash: &str,
        now: i64,
        by: Registrar<'_>,
    ) -> anyhow::Result<Created> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let source = match by {
            Registrar::Admin => None,
            Registrar::Source { source, per_hour } => {
                if registrations_since(&tx, source, now - 3600)? >= i64::from(per_hour) {
                    return Ok(Created::OverLimit);
                }
                Some(source)
            }
        };
        let user = tx
            .query_row(
                "INSERT INTO users (name, password_hash, created_at, registered_from)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO NOTHING
                 RETURNING id, name, password_hash, created_at, failures, locked_until",
                params![name, password_hash, now, source],
                user_from_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(user.map_or(Created::Taken, Created::User))
    }

    /// Accounts `source` registered in the hour before `now`.
    pub fn registrations_from(&self, source: &str, now: i64) -> anyhow::Result<i64> {
        registrations_since(&self.conn, source, now - 3600)
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

fn registrations_since(
    conn: &rusqlite::Connection,
    source: &str,
    since: i64,
) -> anyhow::Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM users WHERE registered_from = ?1 AND created_at > ?2",
        params![source, since],
        |row| row.get(0),
    )?)
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
        let alice = store
            .create_user("Alice", "$h", 1, Registrar::Admin)
            .unwrap();
        assert!(matches!(alice, Created::User(_)));
        assert_eq!(
            store
                .create_user("alice", "$h", 1, Registrar::Admin)
                .unwrap(),
            Created::Taken
        );
        assert_eq!(store.find_user("ALICE").unwrap().unwrap().name, "Alice");
    }

    #[test]
    fn a_source_registers_at_most_its_limit_per_hour() {
        let mut store = Store::open_in_memory().unwrap();
        let from = |source| Registrar::Source {
            source,
            per_hour: 2,
        };
        for (i, name) in ["a", "b"].iter().enumerate() {
            let created = store.create_user(name, "$h", 100 + i as i64, from("127.0.0.2"));
            assert!(matches!(created.unwrap(), Created::User(_)), "{name}");
        }
        assert_eq!(
            store
                .create_user("c", "$h", 200, from("127.0.0.2"))
                .unwrap(),
            Created::OverLimit
        );
        assert!(matches!(
            store
                .create_user("c", "$h", 200, from("127.0.0.3"))
                .unwrap(),
            Created::User(_)
        ));
        assert!(matches!(
            store.create_user("d", "$h", 200, Registrar::Admin).unwrap(),
            Created::User(_)
        ));
        assert_eq!(store.registrations_from("127.0.0.2", 200).unwrap(), 2);
        // An hour after the first, there is room for one more.
        assert!(matches!(
            store
                .create_user("e", "$h", 3700, from("127.0.0.2"))
                .unwrap(),
            Created::User(_)
        ));
    }
}
