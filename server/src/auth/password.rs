//! Admin passwords: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane).
//!
//! Every argon2 run needs 19 MiB, and sign-in is open to anyone, so hashing goes through a
//! [`PasswordHasher`]: a small number of hashes run at once (on the blocking pool, never on the
//! async runtime), each in one of a fixed set of reused work buffers. Callers that find every
//! slot taken wait a short while, then get [`HashError::Busy`] ("try again") instead of queueing
//! without bound. Memory for hashing is thus capped at `slots × 19 MiB` whatever the load; a
//! fresh buffer per hash made glibc keep gigabytes of freed blocks after a burst.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
const OUTPUT_LEN: usize = 32;

fn params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN))
        .expect("constant argon2 parameters are valid")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot stayed taken for the whole wait: the caller should try again shortly.
    #[error("too many sign-ins are being checked at the moment")]
    Busy,
    #[error("password hashing failed")]
    Failed,
}

/// Hashes a new password into a PHC string, using `memory` as argon2's work area.
fn hash_with(password: &[u8], memory: &mut Vec<Block>) -> Result<String, HashError> {
    let params = params();
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_buf)
        .map_err(|_| HashError::Failed)?;
    let mut out = [0u8; OUTPUT_LEN];
    raw_hash(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        password,
        salt_bytes,
        &mut out,
        memory,
    )?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|_| HashError::Failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|_| HashError::Failed)?),
    };
    Ok(phc.to_string())
}

fn raw_hash(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), HashError> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .map_err(|_| HashError::Failed)
}

/// Checks `password` against a PHC string (any argon2 parameters), using `memory`.
fn verify_with(password: &[u8], phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Some(salt), Some(expected)) =
        (Algorithm::try_from(hash.algorithm), hash.salt, hash.hash)
    else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    // Refuse parameters that would make one verification allocate far more than ours do.
    if params.m_cost() > 4 * M_COST_KIB {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let Ok(params) = argon2::ParamsBuilder::new()
        .m_cost(params.m_cost())
        .t_cost(params.t_cost())
        .p_cost(params.p_cost())
        .output_len(expected.len())
        .build()
    else {
        return false;
    };
    if raw_hash(algorithm, version, params, password, salt, &mut out, memory).is_err() {
        return false;
    }
    crate::auth::constant_time_eq_bytes(&out, expected.as_bytes())
}

/// Verified against when an email is unknown, so a wrong email costs as much as a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_with(b"not a real password, only for timing", &mut Vec::new()).unwrap_or_default()
});

/// Bounded, memory-reusing argon2 for the whole server (one per process).
pub struct PasswordHasher {
    slots: Arc<Semaphore>,
    wait: Duration,
    /// One work buffer per slot, allocated on first use and kept (a panicking hash loses its
    /// buffer; the next job allocates a new one).
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
    total: usize,
    computed: AtomicU64,
    refused: AtomicU64,
    /// Callers waiting for a slot now (see [`Waiting`]).
    waiting: AtomicUsize,
}

/// Counts one caller in [`PasswordHasher::waiting`] from its creation until it is dropped: when
/// the caller gets its slot, gives up at the end of the wait, or is itself dropped mid-wait (a
/// client gone, the request timeout), so the gauge never keeps callers that left.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("available", &self.slots.available_permits())
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new(DEFAULT_CONCURRENT_HASHES, DEFAULT_HASH_WAIT)
    }
}

pub const DEFAULT_CONCURRENT_HASHES: usize = 2;
pub const DEFAULT_HASH_WAIT: Duration = Duration::from_secs(3);

impl PasswordHasher {
    /// `slots` hashes at most at once (at least 1); a caller waits up to `wait` for a slot.
    pub fn new(slots: usize, wait: Duration) -> Self {
        let slots = slots.max(1);
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            wait,
            buffers: Arc::new(Mutex::new((0..slots).map(|_| Vec::new()).collect())),
            total: slots,
            computed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
        }
    }

    /// argon2 computations run so far (each costs 19 MiB and tens of milliseconds).
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    /// Callers sent away because every slot stayed busy.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Callers waiting for a hashing slot right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Hashing slots in use right now.
    pub fn in_use(&self) -> usize {
        self.total - self.slots.available_permits()
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let queued = Waiting::new(&self.waiting);
        let permit = match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await
        {
            Ok(Ok(p)) => p,
            _ => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Err(HashError::Busy);
            }
        };
        drop(queued);
        self.computed.fetch_add(1, Ordering::Relaxed);
        // The slot and the buffer travel with the blocking job and come back only when the hash
        // is done, even if the request that asked for it was dropped meanwhile (a client gone,
        // the request timeout): otherwise abandoned hashes would keep running beyond the limit,
        // each in a freshly allocated buffer.
        let buffers = self.buffers.clone();
        tokio::task::spawn_blocking(move || {
            let mut buffer = buffers
                .lock()
                .ok()
                .and_then(|mut b| b.pop())
                .unwrap_or_default();
            let out = job(&mut buffer);
            if let Ok(mut b) = buffers.lock() {
                b.push(buffer);
            }
            drop(permit);
            out
        })
        .await
        .map_err(|_| HashError::Failed)
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move |mem| hash_with(password.as_bytes(), mem))
            .await?
    }

    /// `None` for `phc` verifies against a dummy hash and returns false, so an unknown email
    /// costs exactly one hash like a known one.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, HashError> {
        self.run(move |mem| match phc {
            Some(phc) => verify_with(password.as_bytes(), &phc, mem),
            None => {
                verify_with(password.as_bytes(), &DUMMY_HASH, mem);
                false
            }
        })
        .await
    }
}

/// One hash outside any server (the operator CLI and tests).
pub async fn hash(password: String) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash_with(password.as_bytes(), &mut Vec::new()))
        .await
        .map_err(|_| HashError::Failed)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_argon2id_owasp_parameters() {
        let hasher = PasswordHasher::new(2, Duration::from_secs(5));
        let h = hasher.hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        let v = |p: &str, h: Option<String>| hasher.verify(p.to_string(), h);
        assert!(v("correct horse battery", Some(h.clone())).await.unwrap());
        assert!(!v("wrong horse battery", Some(h.clone())).await.unwrap());
        assert!(!v("anything", None).await.unwrap());
        assert!(!v("anything", Some("garbage".into())).await.unwrap());
        assert_eq!(hasher.computed(), 5);
    }

    #[test]
    fn verifies_hashes_made_by_the_argon2_crate_itself() {
        use argon2::password_hash::PasswordHasher as _;
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw from elsewhere", &salt)
        .unwrap()
        .to_string();
        let mut mem = Vec::new();
        assert!(verify_with(b"pw from elsewhere", &other, &mut mem));
        assert!(!verify_with(b"pw from elsewhere!", &other, &mut mem));
        let ours = hash_with(b"ours", &mut mem).unwrap();
        use argon2::password_hash::PasswordVerifier;
        assert!(
            Argon2::default()
                .verify_password(b"ours", &PasswordHash::new(&ours).unwrap())
                .is_ok()
        );
    }

    #[tokio::test]
    async fn an_abandoned_hash_keeps_its_slot_until_it_is_done() {
        let hasher = Arc::new(PasswordHasher::new(1, Duration::from_millis(1)));
        let h = hasher.clone();
        let first = tokio::spawn(async move { h.verify("x".into(), None).await });
        // Let the first job start, then drop the caller (as a request timeout would).
        while hasher.in_use() == 0 {
            tokio::task::yield_now().await;
        }
        first.abort();
        let _ = first.await;
        assert_eq!(
            hasher.in_use(),
            1,
            "the hash still runs, so its slot stays taken"
        );
        assert_eq!(
            hasher.verify("y".into(), None).await,
            Err(HashError::Busy),
            "no second hash beside the abandoned one"
        );
    }

    /// Takes the hasher's only slot with a job that runs until the returned sender is dropped.
    async fn occupy(hasher: &Arc<PasswordHasher>) -> std::sync::mpsc::Sender<()> {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let h = hasher.clone();
        tokio::spawn(async move { h.run(move |_| hold.recv()).await });
        while hasher.in_use() == 0 {
            tokio::task::yield_now().await;
        }
        release
    }

    async fn until_waiting(hasher: &PasswordHasher, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while hasher.waiting() != n {
            assert!(
                std::time::Instant::now() < deadline,
                "waiting stayed {} (expected {n})",
                hasher.waiting()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn the_waiting_count_follows_callers_that_get_a_slot_or_are_dropped() {
        let hasher = Arc::new(PasswordHasher::new(1, Duration::from_secs(60)));
        let release = occupy(&hasher).await;
        assert_eq!(hasher.waiting(), 0, "the running job is not waiting");
        let mut callers = Vec::new();
        for _ in 0..3 {
            let h = hasher.clone();
            callers.push(tokio::spawn(async move { h.run(|_| ()).await }));
        }
        until_waiting(&hasher, 3).await;
        // A caller dropped mid-wait (its client went away, or the request timed out).
        let gone = callers.pop().unwrap();
        gone.abort();
        assert!(gone.await.unwrap_err().is_cancelled());
        assert_eq!(hasher.waiting(), 2);
        drop(release);
        for c in callers {
            assert_eq!(c.await.unwrap(), Ok(()));
        }
        assert_eq!(hasher.waiting(), 0);
        assert_eq!(hasher.refused(), 0);
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_waiting_is_no_longer_counted() {
        let hasher = Arc::new(PasswordHasher::new(1, Duration::from_millis(200)));
        let release = occupy(&hasher).await;
        let h = hasher.clone();
        let caller = tokio::spawn(async move { h.run(|_| ()).await });
        until_waiting(&hasher, 1).await;
        assert_eq!(caller.await.unwrap(), Err(HashError::Busy));
        assert_eq!(hasher.waiting(), 0, "the refused caller left the queue");
        assert_eq!(hasher.refused(), 1);
        drop(release);
    }

    #[tokio::test]
    async fn callers_beyond_the_slots_wait_then_hear_busy() {
        let hasher = Arc::new(PasswordHasher::new(1, Duration::from_millis(1)));
        let mut jobs = Vec::new();
        for _ in 0..6 {
            let h = hasher.clone();
            jobs.push(tokio::spawn(
                async move { h.verify("x".into(), None).await },
            ));
        }
        let mut busy = 0;
        for j in jobs {
            if j.await.unwrap() == Err(HashError::Busy) {
                busy += 1;
            }
        }
        assert!(
            busy >= 1,
            "one slot and no real wait: some callers are refused"
        );
        assert_eq!(hasher.refused(), busy);
        assert_eq!(hasher.computed() + busy, 6);
        assert_eq!(hasher.in_use(), 0);
    }
}
