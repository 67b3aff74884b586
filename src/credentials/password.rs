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
//! `verify` takes its cost from the stored PHC string, so a stored string is checked
//! against [`MAX_MEMORY`] and [`MAX_P`] before anything is computed: a tampered row asking
//! for N = 2^27 would otherwise allocate 128 GiB.

use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use anyhow::{Context, bail};
use scrypt::password_hash::phc::PasswordHash;
use scrypt::password_hash::{PasswordHasher, PasswordVerifier};
use scrypt::{Params, Scrypt};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

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
}

impl Hasher {
    /// A hasher with cost N = 2^`log_n` (r = 8, p = 1) and `slots` hashes at a time.
    pub fn new(log_n: u8, slots: usize) -> anyhow::Result<Hasher> {
        let params = Params::new(log_n, Params::RECOMMENDED_R, Params::RECOMMENDED_P)
            .map_err(|e| anyhow::anyhow!("invalid scrypt cost 2^{log_n}: {e}"))?;
        if memory(&params) > MAX_MEMORY {
            bail!(
                "scrypt cost 2^{log_n} needs more than {} MiB per hash",
                MAX_MEMORY >> 20
            );
        }
        let scrypt = Scrypt::new_with_params(params);
        let mut unknown = [0u8; 32];
        getrandom::fill(&mut unknown).context("no randomness from the operating system")?;
        let dummy = hash_with(&scrypt, &unknown)?;
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
    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String, HashError> {
        let scrypt = self.scrypt;
        self.with_slot(move || Ok(hash_with(&scrypt, password.as_bytes())?))
            .await
    }

    /// Checks `password` against a stored PHC string.
    pub async fn verify(
        &self,
        password: Zeroizing<String>,
        stored: String,
    ) -> Result<Verdict, HashError> {
        self.with_slot(move || verify_with(password.as_bytes(), &stored))
            .await
    }

    /// Spends as long as a real check, and fails: for attempts that must not be told
    /// apart from a wrong password by their timing.
    pub async fn waste(&self, password: Zeroizing<String>) -> Result<Verdict, HashError> {
        let dummy = String::clone(&self.dummy);
        self.verify(password, dummy)
            .await
            .map(|_| Verdict::Mismatch)
    }

    async fn with_slot<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let permit =
            tokio::time::timeout(self.queue_wait, Arc::clone(&self.permits).acquire_owned())
                .await
                .map_err(|_| HashError::Busy)?
                .expect("the semaphore is never closed");
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _permit = permit;
            let _ = done.send(work());
        });
        let lost = || HashError::Other(anyhow::anyhow!("the hashing threads have stopped"));
        self.jobs.send(job).map_err(|_| lost())?;
        result.await.map_err(|_| lost())?
    }
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

    #[tokio::test]
    async fn hash_then_verify_with_a_salt_per_hash() {
        let hasher = Hasher::new(10, 2).unwrap();
        let a = hasher.hash(secret("correct horse")).await.unwrap();
        let b = hasher.hash(secret("correct horse")).await.unwrap();
        assert!(a.starts_with("$scrypt$ln=10,r=8,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert_eq!(
            hasher
                .verify(secret("correct horse"), a.clone())
                .await
                .unwrap(),
            Verdict::Match
        );
        assert_eq!(
            hasher.verify(secret("battery"), a).await.unwrap(),
            Verdict::Mismatch
        );
    }

    #[tokio::test]
    async fn tampered_parameters_are_refused_before_any_work() {
        let hasher = Hasher::new(10, 1).unwrap();
        let real = hasher.hash(secret("password1")).await.unwrap();
        for tampered in [
            real.replace("ln=10", "ln=27"),
            real.replace("r=8", "r=4096"),
            real.replace("p=1", "p=64"),
        ] {
            let started = std::time::Instant::now();
            let err = hasher
                .verify(secret("password1"), tampered)
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
            async move { slow.hash(secret("first-password")).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = impatient.hash(secret("second-password")).await;
        assert!(matches!(second, Err(HashError::Busy)), "{second:?}");
        assert!(first.await.unwrap().is_ok());
        // With the slot free again, hashing works.
        assert!(impatient.hash(secret("third-password")).await.is_ok());
    }

    #[tokio::test]
    async fn the_dummy_check_always_fails() {
        let hasher = Hasher::new(10, 1).unwrap();
        assert_eq!(
            hasher.waste(secret("anything")).await.unwrap(),
            Verdict::Mismatch
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
