//! Password hashing with scrypt, bounded so that logins cannot exhaust memory or CPU.
//!
//! Invariant: hashes run only on the hasher's own threads, one per slot (one per core by
//! default), so memory stays under `slots x 128 x N x r` bytes (128 MiB per hash at the
//! default N = 2^17, r = 8) however many clients log in. A login that finds every slot
//! taken waits [`QUEUE_WAIT`], then is told to retry.
//!
//! Dedicated threads matter as much as the count: the allocator keeps a freed scrypt
//! buffer in the arena of the thread that used it. On tokio's blocking pool, which grows
//! with database calls too, 20 logins left 20 such buffers behind (331 MiB peak for
//! 16 MiB hashes with 2 slots); on two dedicated threads, two.
//!
//! Fair between clients as well: at most one hash per source address, and one per
//! account, is queued or running at a time. One address with many connections takes one
//! slot, not all of them, and so does an account guessed at from many addresses.
//!
//! `verify` takes its cost from the stored PHC string, so a stored string is checked
//! against [`MAX_MEMORY`] and [`MAX_P`] before anything is computed: a tampered row asking
//! for N = 2^27 would otherwise allocate 128 GiB.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use scrypt::password_hash::phc::PasswordHash;
use scrypt::password_hash::{PasswordHasher, PasswordVerifier};
use scrypt::{Params, Scrypt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeroize::Zeroizing;

use crate::transport::Source;

/// Shortest and longest password, in bytes.
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 1024;
/// Largest scrypt memory (128 x N x r bytes) a stored hash may ask for.
pub const MAX_MEMORY: u64 = 256 * 1024 * 1024;
/// Largest scrypt parallelism a stored hash may ask for; each lane runs in turn.
pub const MAX_P: u32 = 4;
/// How long a login waits for a free hashing slot before it is told to retry.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("every password hashing slot is busy")]
    Busy,
    #[error("the stored password hash asks for more than the allowed cost ({0})")]
    OverCeiling(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The outcome of checking a password.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Match,
    Mismatch,
}

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct Hasher {
    scrypt: Scrypt,
    /// One permit per hashing thread: a job is queued only with a permit in hand, so a
    /// job never waits inside the queue.
    permits: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    queue_wait: Duration,
    /// A hash of a password nobody knows, with the current cost, for equal timing.
    dummy: Arc<String>,
    /// A gate per party with a hash queued or running: see [`Turn`].
    gates: Arc<Mutex<Gates>>,
    /// How long one hash takes here, a moving average in nanoseconds: what an attempt
    /// that is refused unchecked waits instead.
    hash_nanos: Arc<AtomicU64>,
    /// Hashes computed, checks and new passwords alike.
    hashes: Arc<AtomicU64>,
}

impl Hasher {
    /// A hasher with cost N = 2^`log_n` (r = 8, p = 1) and `slots` hashes at a time.
    pub fn new(log_n: u8, slots: usize) -> anyhow::Result<Hasher> {
        let scrypt = scrypt_with_cost(log_n)?;
        let mut unknown = [0u8; 32];
        getrandom::fill(&mut unknown).context("no randomness from the operating system")?;
        let started = Instant::now();
        let dummy = hash_with(&scrypt, &unknown)?;
        let hash_nanos = nanos(started.elapsed());
        let slots = slots.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..slots {
            let queue = Arc::clone(&queue);
            thread::Builder::new()
                .name(format!("netlab-hash-{i}"))
                .spawn(move || {
                    // Ends when every Hasher, and so every sender, is gone.
                    while let Ok(job) = queue
                        .lock()
                        .map_err(drop)
                        .and_then(|q| q.recv().map_err(drop))
                    {
                        job();
                    }
                })
                .context("could not start a hashing thread")?;
        }
        Ok(Hasher {
            scrypt,
            permits: Arc::new(Semaphore::new(slots)),
            jobs,
            queue_wait: QUEUE_WAIT,
            dummy: Arc::new(dummy),
            gates: Arc::default(),
            hash_nanos: Arc::new(AtomicU64::new(hash_nanos)),
            hashes: Arc::default(),
        })
    }

    /// How long a login waits for a free slot; [`QUEUE_WAIT`] unless changed.
    pub fn with_queue_wait(self, queue_wait: Duration) -> Hasher {
        Hasher { queue_wait, ..self }
    }

    /// One hashing slot per core: more would only queue on the CPU and add memory.
    pub fn default_slots() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// A PHC string for `password`, with a fresh random salt.
    pub async fn hash(
        &self,
        password: Zeroizing<String>,
        source: Source,
    ) -> Result<String, HashError> {
        let scrypt = self.scrypt;
        let work = move || Ok(hash_with(&scrypt, password.as_bytes())?);
        self.with_slot(&[Party::Source(source)], work).await
    }

    /// Checks `password`, from `source`, against the stored PHC string of the account
    /// `user_id`.
    pub async fn verify(
        &self,
        password: Zeroizing<String>,
        stored: String,
        source: Source,
        user_id: i64,
    ) -> Result<Verdict, HashError> {
        let work = move || verify_with(password.as_bytes(), &stored);
        let parties = [Party::Source(source), Party::Account(user_id)];
        self.with_slot(&parties, work).await
    }

    /// Spends as long as a real check, and fails: for a name with no account, which
    /// must not be told apart from a wrong password by its timing.
    pub async fn waste(
        &self,
        password: Zeroizing<String>,
        source: Source,
    ) -> Result<Verdict, HashError> {
        let dummy = String::clone(&self.dummy);
        let work = move || verify_with(password.as_bytes(), &dummy);
        self.with_slot(&[Party::Source(source)], work)
            .await
            .map(|_| Verdict::Mismatch)
    }

    /// Waits about as long as a check takes, computing nothing: for an attempt refused
    /// unchecked, which must cost the server no hashing yet answer in the time a wrong
    /// password would.
    pub async fn pause_like_a_check(&self) {
        let nanos = self.hash_nanos.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_nanos(nanos)).await;
    }

    /// Hashes computed so far.
    pub fn hashes(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }

    /// Runs `work` on a hashing thread once each of `parties` has its turn (always
    /// taken in the order given, source before account, so no two hashes can each hold
    /// what the other waits for) and a slot is free.
    async fn with_slot<T: Send + 'static>(
        &self,
        parties: &[Party],
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let waited = tokio::time::timeout(self.queue_wait, async {
            let mut turn = Vec::with_capacity(parties.len());
            for &party in parties {
                turn.push(self.turn_of(party).await);
            }
            let slot = Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            (turn, slot)
        });
        let (turn, slot) = waited.await.map_err(|_| HashError::Busy)?;
        let (done, result) = tokio::sync::oneshot::channel();
        let (hash_nanos, hashes) = (Arc::clone(&self.hash_nanos), Arc::clone(&self.hashes));
        let job: Job = Box::new(move || {
            let started = Instant::now();
            let outcome = work();
            // A moving average over the last eight or so hashes.
            let took = nanos(started.elapsed());
            let average = hash_nanos.load(Ordering::Relaxed);
            hash_nanos.store(average - average / 8 + took / 8, Ordering::Relaxed);
            hashes.fetch_add(1, Ordering::Relaxed);
            // Released before the caller hears back, so that its next hash finds them free.
            drop((turn, slot));
            let _ = done.send(outcome);
        });
        let lost = || HashError::Other(anyhow::anyhow!("the hashing threads have stopped"));
        self.jobs.send(job).map_err(|_| lost())?;
        result.await.map_err(|_| lost())?
    }

    /// Waits until no other hash of `party` is queued or running.
    async fn turn_of(&self, party: Party) -> Turn {
        let gate = GateUse::new(party, &self.gates);
        let permit = Arc::clone(&gate.gate)
            .acquire_owned()
            .await
            .expect("a gate is never closed");
        Turn {
            _permit: permit,
            _gate: gate,
        }
    }
}

/// Whose hashes take turns: a client address, or an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Party {
    Source(Source),
    Account(i64),
}

/// Each party's gate, and how many hashes hold or wait at it.
type Gates = HashMap<Party, (Arc<Semaphore>, usize)>;

/// A party's turn to hash. Its permit is released before its gate use ends (fields drop
/// in order), so the gate is gone only when nobody holds it or waits at it.
struct Turn {
    _permit: OwnedSemaphorePermit,
    _gate: GateUse,
}

/// One hash holding or waiting at its party's gate; the last one out removes the gate,
/// so the map holds only parties with hashes in flight, even when waiters give up.
struct GateUse {
    gate: Arc<Semaphore>,
    party: Party,
    gates: Arc<Mutex<Gates>>,
}

impl GateUse {
    fn new(party: Party, gates: &Arc<Mutex<Gates>>) -> GateUse {
        let mut map = gates.lock().unwrap_or_else(|p| p.into_inner());
        let (gate, users) = map
            .entry(party)
            .or_insert_with(|| (Arc::new(Semaphore::new(1)), 0));
        *users += 1;
        GateUse {
            gate: Arc::clone(gate),
            party,
            gates: Arc::clone(gates),
        }
    }
}

impl Drop for GateUse {
    fn drop(&mut self) {
        let mut map = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, users)) = map.get_mut(&self.party) {
            *users -= 1;
            if *users == 0 {
                map.remove(&self.party);
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Hashes one password here and now, outside any server: for `netlab users add`.
pub fn hash_once(log_n: u8, password: &str) -> anyhow::Result<String> {
    hash_with(&scrypt_with_cost(log_n)?, password.as_bytes())
}

/// scrypt with N = 2^`log_n`, r = 8, p = 1, if that fits under [`MAX_MEMORY`].
fn scrypt_with_cost(log_n: u8) -> anyhow::Result<Scrypt> {
    let params = Params::new(log_n, Params::RECOMMENDED_R, Params::RECOMMENDED_P)
        .map_err(|e| anyhow::anyhow!("invalid scrypt cost 2^{log_n}: {e}"))?;
    if memory(&params) > MAX_MEMORY {
        bail!(
            "scrypt cost 2^{log_n} needs more than {} MiB per hash",
            MAX_MEMORY >> 20
        );
    }
    Ok(Scrypt::new_with_params(params))
}

/// Whether a password may be chosen; the reason if not.
pub fn check_new(password: &str) -> Result<(), String> {
    if (MIN_LEN..=MAX_LEN).contains(&password.len()) {
        Ok(())
    } else {
        Err(format!("A password is {MIN_LEN} to {MAX_LEN} bytes"))
    }
}

fn memory(params: &Params) -> u64 {
    128u64
        .saturating_mul(params.n())
        .saturating_mul(u64::from(params.r()))
}

fn hash_with(scrypt: &Scrypt, password: &[u8]) -> anyhow::Result<String> {
    let hash = scrypt
        .hash_password(password)
        .map_err(|e| anyhow::anyhow!("could not hash a password: {e}"))?;
    Ok(hash.to_string())
}

fn verify_with(password: &[u8], stored: &str) -> Result<Verdict, HashError> {
    let hash = PasswordHash::new(stored).map_err(|e| {
        HashError::Other(anyhow::anyhow!("stored password hash is unreadable: {e}"))
    })?;
    let params = Params::try_from(&hash)
        .map_err(|e| HashError::Other(anyhow::anyhow!("stored scrypt parameters: {e}")))?;
    if memory(&params) > MAX_MEMORY || params.p() > MAX_P {
        return Err(HashError::OverCeiling(format!(
            "ln={}, r={}, p={}",
            params.log_n(),
            params.r(),
            params.p()
        )));
    }
    // Constant-time comparison is done by the verifier.
    match Scrypt::default().verify_password(password, &hash) {
        Ok(()) => Ok(Verdict::Match),
        Err(scrypt::password_hash::Error::PasswordInvalid) => Ok(Verdict::Mismatch),
        Err(e) => Err(HashError::Other(anyhow::anyhow!(
            "could not check a password: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Zeroizing<String> {
        Zeroizing::new(s.to_owned())
    }

    fn source(ip: &str) -> Source {
        Source::of(ip.parse().unwrap())
    }

    const HERE: &str = "127.0.0.2";

    #[tokio::test]
    async fn hash_then_verify_with_a_salt_per_hash() {
        let hasher = Hasher::new(10, 2).unwrap();
        let a = hasher
            .hash(secret("correct horse"), source(HERE))
            .await
            .unwrap();
        let b = hasher
            .hash(secret("correct horse"), source(HERE))
            .await
            .unwrap();
        assert!(a.starts_with("$scrypt$ln=10,r=8,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert_eq!(
            hasher
                .verify(secret("correct horse"), a.clone(), source(HERE), 1)
                .await
                .unwrap(),
            Verdict::Match
        );
        assert_eq!(
            hasher
                .verify(secret("battery"), a, source(HERE), 1)
                .await
                .unwrap(),
            Verdict::Mismatch
        );
    }

    #[tokio::test]
    async fn tampered_parameters_are_refused_before_any_work() {
        let hasher = Hasher::new(10, 1).unwrap();
        let real = hasher
            .hash(secret("password1"), source(HERE))
            .await
            .unwrap();
        for tampered in [
            real.replace("ln=10", "ln=27"),
            real.replace("r=8", "r=4096"),
            real.replace("p=1", "p=64"),
        ] {
            let started = std::time::Instant::now();
            let err = hasher
                .verify(secret("password1"), tampered, source(HERE), 1)
                .await
                .unwrap_err();
            assert!(matches!(err, HashError::OverCeiling(_)), "{err:?}");
            assert!(started.elapsed() < Duration::from_secs(1));
        }
    }

    #[tokio::test]
    async fn a_login_that_finds_every_slot_busy_is_told_so() {
        // One slot, busy with a costly hash; the next login may wait only 10 ms.
        let slow = Hasher::new(16, 1).unwrap();
        let impatient = slow.clone().with_queue_wait(Duration::from_millis(10));
        let first = tokio::spawn({
            let slow = slow.clone();
            async move { slow.hash(secret("first-password"), source(HERE)).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        // From another source, so that what it waits for is the slot.
        let second = impatient
            .hash(secret("second-password"), source("127.0.0.3"))
            .await;
        assert!(matches!(second, Err(HashError::Busy)), "{second:?}");
        assert!(first.await.unwrap().is_ok());
        // With the slot free again, hashing works.
        assert!(
            impatient
                .hash(secret("third-password"), source(HERE))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_dummy_check_always_fails() {
        let hasher = Hasher::new(10, 1).unwrap();
        assert_eq!(
            hasher
                .waste(secret("anything"), source(HERE))
                .await
                .unwrap(),
            Verdict::Mismatch
        );
    }

    #[tokio::test]
    async fn one_source_hashes_one_at_a_time_while_others_go_on() {
        // Two slots; the next hash of a busy source, or a slot, may wait only 20 ms.
        let hasher = Hasher::new(16, 2)
            .unwrap()
            .with_queue_wait(Duration::from_millis(20));
        let first = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash(secret("first-password"), source(HERE)).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (same, other) = tokio::join!(
            hasher.hash(secret("second-password"), source(HERE)),
            hasher.hash(secret("third-password"), source("127.0.0.3")),
        );
        assert!(matches!(same, Err(HashError::Busy)), "{same:?}");
        assert!(
            other.is_ok(),
            "another source has the second slot: {other:?}"
        );
        assert!(first.await.unwrap().is_ok());
        assert_eq!(hasher.hashes(), 2);
        assert!(
            hasher.gates.lock().unwrap().is_empty(),
            "gates of finished sources are forgotten"
        );
    }

    #[tokio::test]
    async fn one_account_is_checked_one_guess_at_a_time_whatever_the_sources() {
        let hasher = Hasher::new(16, 2)
            .unwrap()
            .with_queue_wait(Duration::from_millis(20));
        // Account 7's stored hash is costly, so its first check holds the account's turn.
        let costly = hash_once(16, "password1").unwrap();
        let stored = hash_once(4, "password1").unwrap();
        let first = tokio::spawn({
            let hasher = hasher.clone();
            async move {
                hasher
                    .verify(secret("guess-1"), costly, source("10.0.0.1"), 7)
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (same_account, other_account) = tokio::join!(
            hasher.verify(secret("guess-2"), stored.clone(), source("10.0.0.2"), 7),
            hasher.verify(secret("password1"), stored, source("10.0.0.3"), 8),
        );
        assert!(
            matches!(same_account, Err(HashError::Busy)),
            "{same_account:?}"
        );
        assert_eq!(other_account.unwrap(), Verdict::Match);
        assert_eq!(first.await.unwrap().unwrap(), Verdict::Mismatch);
        assert!(hasher.gates.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_refused_attempt_waits_about_a_hash_computing_nothing() {
        let hasher = Hasher::new(14, 1).unwrap();
        let hashed = std::time::Instant::now();
        hasher
            .hash(secret("a-password"), source(HERE))
            .await
            .unwrap();
        let hash_time = hashed.elapsed();
        let paused = std::time::Instant::now();
        hasher.pause_like_a_check().await;
        let pause = paused.elapsed();
        assert_eq!(hasher.hashes(), 1, "the pause hashed nothing");
        // The same order of magnitude, with room for a noisy machine: not a speed test.
        assert!(
            pause * 10 > hash_time && pause < hash_time * 10,
            "{pause:?} vs {hash_time:?}"
        );
    }

    #[test]
    fn password_length_is_counted_in_bytes() {
        assert!(check_new("1234567").is_err());
        assert!(check_new("12345678").is_ok());
        // 6 characters but 12 bytes: long enough. 4 characters, 8 bytes: just enough.
        assert!(check_new("пароль").is_ok());
        assert!(check_new("ключ").is_ok());
        assert!(check_new("ёж1").is_err()); // 5 bytes
        assert!(check_new(&"x".repeat(1024)).is_ok());
        assert!(check_new(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn the_default_cost_is_allowed_and_a_huge_one_is_not() {
        assert!(memory(&Params::new(17, 8, 1).unwrap()) <= MAX_MEMORY);
        assert!(Hasher::new(22, 1).is_err());
    }
}
