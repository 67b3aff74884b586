//! Password attempts: admitted or refused before any hash runs, and the penalties that
//! failures earn.
//!
//! Invariant: an attempt is admitted, and counted as a failure, in one immediate
//! transaction, before its password is checked; success takes the failure back. However
//! many connections guess at once, each sees the failures admitted before it, so no
//! more attempts are checked than the penalties allow, and every checked failure counts.
//!
//! The policy, after OpenSSH's PerSourcePenalties:
//! - **A source** (an IPv4 address, an IPv6 /64) may fail [`SOURCE_FREE_FAILURES`] times
//!   in a row, whatever accounts it tries; then it must wait 1 s before its next attempt
//!   is checked, twice as long after each further failure, at most [`MAX_LOCK_SECS`].
//! - **An account** is slowed down the same way for everyone once it has
//!   [`ACCOUNT_FREE_FAILURES`] failures, but one source counts for at most
//!   [`SOURCE_SHARE`] of them: a single guesser is stopped by its own penalty and never
//!   locks the owner out; guessing spread over many sources is slowed per account.
//! - Penalties are forgotten [`FORGET_AFTER`] seconds after the last failure, and by
//!   `netlab users unlock`.
//!
//! So one source gets about 5 + 10 + 94 checked guesses in its first day (free ones, the
//! doubling waits up to 15 minutes, then one per 15 minutes), and an account, from any
//! number of sources, about 20 + 10 + 94.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::Store;

/// Failures in a row a source may have before each further attempt must wait.
pub const SOURCE_FREE_FAILURES: i64 = 5;
/// Failures an account may have, from all sources, before each further attempt waits.
pub const ACCOUNT_FREE_FAILURES: i64 = 20;
/// The most failures one source counts for in an account's total.
pub const SOURCE_SHARE: i64 = 5;
/// The longest wait between attempts, in seconds.
pub const MAX_LOCK_SECS: i64 = 15 * 60;
/// Seconds after its last failure at which a penalty is forgotten.
pub const FORGET_AFTER: i64 = 86400;
/// Expired penalty rows deleted per admitted attempt, so the table stays small without a
/// sweep that grows with it.
const SWEEP: i64 = 16;

/// Whether an attempt may be checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Check it; it counts as a failure until [`Store::record_success`] says otherwise.
    Admitted,
    /// Do not check it: the source, or the account, must wait until then.
    Refused { until: i64, penalty: Penalty },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Penalty {
    Source,
    Account,
}

impl Store {
    /// Admits or refuses a password attempt from `source` on the account `user_id`
    /// (`None`: a name with no account, which only the source pays for). See the
    /// module doc.
    pub fn admit_attempt(
        &mut self,
        user_id: Option<i64>,
        source: &str,
        now: i64,
    ) -> anyhow::Result<Admission> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let source_lock: Option<i64> = tx
            .query_row(
                "SELECT locked_until FROM source_penalties WHERE source = ?1",
                [source],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(until) = source_lock.filter(|&until| until > now) {
            return Ok(Admission::Refused {
                until,
                penalty: Penalty::Source,
            });
        }
        if let Some(user_id) = user_id {
            let until: i64 = tx.query_row(
                "SELECT locked_until FROM users WHERE id = ?1",
                [user_id],
                |row| row.get(0),
            )?;
            if until > now {
                return Ok(Admission::Refused {
                    until,
                    penalty: Penalty::Account,
                });
            }
        }
        count_source_failure(&tx, source, now)?;
        if let Some(user_id) = user_id {
            count_account_failure(&tx, user_id, source, now)?;
        }
        tx.execute(
            "DELETE FROM source_penalties WHERE rowid IN (
                 SELECT rowid FROM source_penalties WHERE last_failure < ?1 LIMIT ?2)",
            params![now - FORGET_AFTER, SWEEP],
        )?;
        tx.commit()?;
        Ok(Admission::Admitted)
    }

    /// Takes back the failure an admitted attempt was counted as, and the rest: the right
    /// password ends the source's penalty and the account's.
    pub fn record_success(&mut self, user_id: i64, source: &str) -> anyhow::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM source_penalties WHERE source = ?1", [source])?;
        clear_account(&tx, user_id)?;
        tx.commit()?;
        Ok(())
    }

    /// Failures in a row counted against `source` (0 if none, or forgotten).
    pub fn source_failures(&self, source: &str) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .query_row(
                "SELECT failures FROM source_penalties WHERE source = ?1",
                [source],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Lifts an account's penalty (not those of the sources that earned it); false if
    /// there is no such user.
    pub fn unlock_user(&mut self, name: &str) -> anyhow::Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(user_id) = tx
            .query_row("SELECT id FROM users WHERE name = ?1", [name], |row| {
                row.get::<_, i64>(0)
            })
            .optional()?
        else {
            return Ok(false);
        };
        clear_account(&tx, user_id)?;
        tx.commit()?;
        Ok(true)
    }
}

/// The wait after `failures` failures in a row when `free` are allowed: none, then 1 s,
/// doubling, at most [`MAX_LOCK_SECS`].
fn wait_after(failures: i64, free: i64) -> i64 {
    match failures - free {
        n if n < 0 => 0,
        n => 1i64
            .checked_shl(u32::try_from(n).unwrap_or(u32::MAX))
            .map_or(MAX_LOCK_SECS, |s| s.min(MAX_LOCK_SECS)),
    }
}

fn count_source_failure(tx: &Transaction<'_>, source: &str, now: i64) -> anyhow::Result<()> {
    let failures: i64 = tx.query_row(
        "INSERT INTO source_penalties (source, failures, locked_until, last_failure)
         VALUES (?1, 1, 0, ?2)
         ON CONFLICT (source) DO UPDATE SET
             failures = CASE WHEN last_failure < ?3 THEN 1 ELSE failures + 1 END,
             last_failure = ?2
         RETURNING failures",
        params![source, now, now - FORGET_AFTER],
        |row| row.get(0),
    )?;
    let wait = wait_after(failures, SOURCE_FREE_FAILURES);
    if wait > 0 {
        tx.execute(
            "UPDATE source_penalties SET locked_until = ?2 WHERE source = ?1",
            params![source, now + wait],
        )?;
    }
    Ok(())
}

fn count_account_failure(
    tx: &Transaction<'_>,
    user_id: i64,
    source: &str,
    now: i64,
) -> anyhow::Result<()> {
    let stale = now - FORGET_AFTER;
    let from_source: i64 = tx.query_row(
        "INSERT INTO account_failures (user_id, source, failures, last_failure)
         VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (user_id, source) DO UPDATE SET
             failures = CASE WHEN last_failure < ?4 THEN 1 ELSE failures + 1 END,
             last_failure = ?3
         RETURNING failures",
        params![user_id, source, now, stale],
        |row| row.get(0),
    )?;
    if from_source > SOURCE_SHARE {
        return Ok(());
    }
    let failures: i64 = tx.query_row(
        "UPDATE users SET
             failures = CASE WHEN last_failure < ?3 THEN 1 ELSE failures + 1 END,
             last_failure = ?2
         WHERE id = ?1
         RETURNING failures",
        params![user_id, now, stale],
        |row| row.get(0),
    )?;
    let wait = wait_after(failures, ACCOUNT_FREE_FAILURES);
    if wait > 0 {
        tx.execute(
            "UPDATE users SET locked_until = ?2 WHERE id = ?1",
            params![user_id, now + wait],
        )?;
    }
    Ok(())
}

fn clear_account(tx: &Transaction<'_>, user_id: i64) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE users SET failures = 0, locked_until = 0 WHERE id = ?1",
        [user_id],
    )?;
    tx.execute("DELETE FROM account_failures WHERE user_id = ?1", [user_id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::Registrar;

    fn store_with_user() -> (Store, i64) {
        let mut store = Store::open_in_memory().unwrap();
        let id = store
            .create_user("bob", "$h", 0, Registrar::Admin)
            .unwrap()
            .user()
            .unwrap()
            .id;
        (store, id)
    }

    fn source_lock(store: &Store, source: &str) -> i64 {
        store
            .conn
            .query_row(
                "SELECT locked_until FROM source_penalties WHERE source = ?1",
                [source],
                |r| r.get(0),
            )
            .unwrap()
    }

    #[test]
    fn a_source_waits_twice_as_long_after_each_failure_past_the_free_ones() {
        let (mut store, _) = store_with_user();
        let mut now = 1000;
        let mut waits = Vec::new();
        for _ in 0..16 {
            assert_eq!(
                store.admit_attempt(None, "127.0.0.2", now).unwrap(),
                Admission::Admitted
            );
            let until = source_lock(&store, "127.0.0.2");
            waits.push((until - now).max(0));
            now = now.max(until);
        }
        assert_eq!(&waits[..4], &[0, 0, 0, 0], "the first four are free");
        assert_eq!(
            &waits[4..],
            &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
        );
    }

    #[test]
    fn a_locked_source_is_refused_and_the_refusal_is_not_counted() {
        let (mut store, id) = store_with_user();
        for _ in 0..5 {
            store.admit_attempt(Some(id), "127.0.0.2", 1000).unwrap();
        }
        for _ in 0..100 {
            assert_eq!(
                store.admit_attempt(Some(id), "127.0.0.2", 1000).unwrap(),
                Admission::Refused {
                    until: 1001,
                    penalty: Penalty::Source
                }
            );
        }
        let failures: i64 = store
            .conn
            .query_row("SELECT failures FROM source_penalties", [], |r| r.get(0))
            .unwrap();
        assert_eq!(failures, 5);
        // Once the wait is over, one attempt is admitted and sets the next wait.
        assert_eq!(
            store.admit_attempt(Some(id), "127.0.0.2", 1001).unwrap(),
            Admission::Admitted
        );
        assert!(matches!(
            store.admit_attempt(Some(id), "127.0.0.2", 1001).unwrap(),
            Admission::Refused { until: 1003, .. }
        ));
    }

    #[test]
    fn one_source_never_locks_the_account_for_others() {
        let (mut store, id) = store_with_user();
        // 40 failures from one source, each admitted as soon as its own wait is over.
        let mut now = 1000;
        for _ in 0..40 {
            assert_eq!(
                store.admit_attempt(Some(id), "127.0.0.2", now).unwrap(),
                Admission::Admitted
            );
            now = now.max(source_lock(&store, "127.0.0.2"));
        }
        assert!(now > 1000 + 3600, "the guesser was slowed down");
        let user = store.find_user("bob").unwrap().unwrap();
        assert_eq!(
            user.failures, SOURCE_SHARE,
            "its share of the account's count"
        );
        assert_eq!(user.locked_until, 0);
        assert_eq!(
            store.admit_attempt(Some(id), "127.0.0.3", now).unwrap(),
            Admission::Admitted,
            "the owner, from elsewhere, is checked at once"
        );
    }

    #[test]
    fn guessing_from_many_sources_locks_the_account_for_all() {
        let (mut store, id) = store_with_user();
        for source in 0..4 {
            for _ in 0..SOURCE_SHARE {
                let from = format!("10.0.0.{source}");
                assert_eq!(
                    store.admit_attempt(Some(id), &from, 1000).unwrap(),
                    Admission::Admitted
                );
            }
        }
        assert_eq!(
            store.admit_attempt(Some(id), "10.0.0.9", 1000).unwrap(),
            Admission::Refused {
                until: 1001,
                penalty: Penalty::Account
            }
        );
        // An admin lifts it; the sources' own penalties stay.
        assert!(store.unlock_user("bob").unwrap());
        assert!(!store.unlock_user("nobody").unwrap());
        assert_eq!(
            store.admit_attempt(Some(id), "10.0.0.9", 1000).unwrap(),
            Admission::Admitted
        );
        assert!(matches!(
            store.admit_attempt(Some(id), "10.0.0.0", 1000).unwrap(),
            Admission::Refused {
                penalty: Penalty::Source,
                ..
            }
        ));
    }

    #[test]
    fn success_takes_the_failures_back_and_a_quiet_day_forgets_them() {
        let (mut store, id) = store_with_user();
        for _ in 0..4 {
            store.admit_attempt(Some(id), "127.0.0.2", 1000).unwrap();
        }
        store.record_success(id, "127.0.0.2").unwrap();
        for _ in 0..4 {
            assert_eq!(
                store.admit_attempt(Some(id), "127.0.0.2", 1000).unwrap(),
                Admission::Admitted
            );
        }
        // Four more would lock it; a day later they are forgotten.
        let later = 1000 + FORGET_AFTER + 1;
        for _ in 0..4 {
            assert_eq!(
                store.admit_attempt(Some(id), "127.0.0.2", later).unwrap(),
                Admission::Admitted
            );
        }
        let failures: i64 = store
            .conn
            .query_row("SELECT failures FROM source_penalties", [], |r| r.get(0))
            .unwrap();
        assert_eq!(failures, 4);
    }

    #[test]
    fn old_penalties_are_swept_a_few_at_a_time() {
        let (mut store, _) = store_with_user();
        for i in 0..40 {
            store
                .admit_attempt(None, &format!("10.1.0.{i}"), 0)
                .unwrap();
        }
        store
            .admit_attempt(None, "10.2.0.1", FORGET_AFTER + 1)
            .unwrap();
        let left: i64 = store
            .conn
            .query_row("SELECT count(*) FROM source_penalties", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 40 + 1 - SWEEP);
    }
}
