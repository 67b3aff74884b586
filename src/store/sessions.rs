//! Sessions of the authentication server: the server's side of a session token.
//!
//! Invariant: a session is found by the SHA-256 of its token, never the token; it ends
//! after `idle_limit` seconds without use or at `expires_at`, whichever comes first.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::Store;

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

impl Store {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::Registrar;

    const LIMITS: SessionLimits = SessionLimits {
        idle_secs: 7 * 86400,
        lifetime_secs: 30 * 86400,
    };

    #[test]
    fn sessions_end_when_idle_or_old_and_renew_on_use() {
        let mut store = Store::open_in_memory().unwrap();
        let id = store
            .create_user("carol", "$h", 0, Registrar::Admin)
            .unwrap()
            .user()
            .unwrap()
            .id;
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
        let id = store
            .create_user("dave", "$h", 0, Registrar::Admin)
            .unwrap()
            .user()
            .unwrap()
            .id;
        store.create_session(id, b"t1", 0, LIMITS).unwrap();
        store.create_session(id, b"t2", 0, LIMITS).unwrap();
        assert_eq!(store.list_users(0).unwrap()[0].sessions, 2);
        assert_eq!(store.revoke_sessions_of("nobody").unwrap(), None);
        assert!(store.delete_user("dave").unwrap());
        assert_eq!(store.use_session(b"t1", 1).unwrap(), None);
        assert!(store.list_sessions(1).unwrap().is_empty());
    }
}
