//! Recent answers of the SCIM token gate, kept in memory for at most [`TTL`], so a sync of
//! thousands of requests reads the credential tables once per [`TTL`] instead of once per
//! request.
//!
//! What stays true:
//! - In this process, a change to any credential or to the provisioning switch (the store
//!   functions that make one call [`credentials_changed`] after they commit) empties every
//!   cache at once, and a lookup that began before the change cannot put its older answer
//!   back (it carries the generation it started under).
//! - Another instance, or the CLI, sees the change within [`TTL`].
//! - Expiry and revocation times are compared with the clock at every request, cached or not.
//! - Only answers for credentials that exist are kept; unknown tokens always reach the
//!   database, so they cannot fill the cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::tokens::GateRow;

/// How long an answer is reused.
pub const TTL: Duration = Duration::from_millis(500);
/// Answers kept at most (credentials in use at once across every organisation).
const CAPACITY: usize = 10_000;

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Call after committing any change to a credential or to an organisation's provisioning
/// switch.
pub fn credentials_changed() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// The generation a lookup starts under (pass it to [`GateCache::put`]).
pub fn generation() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}

struct Kept {
    at: Instant,
    generation: u64,
    row: GateRow,
}

/// One per server (one per database): keyed by the credential's hash.
#[derive(Default)]
pub struct GateCache {
    kept: Mutex<HashMap<String, Kept>>,
}

impl GateCache {
    pub fn get(&self, hash: &str) -> Option<GateRow> {
        let now_gen = generation();
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        match kept.get(hash) {
            Some(k) if k.generation == now_gen && k.at.elapsed() < TTL => Some(k.row.clone()),
            Some(_) => {
                kept.remove(hash);
                None
            }
            None => None,
        }
    }

    /// Records a use written to the database, so the kept answer does not ask for it again.
    pub fn touched(&self, hash: &str, at: i64) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = kept.get_mut(hash) {
            k.row.last_used_at = Some(at);
        }
    }

    /// Keeps `row`, read under `generation`, unless a credential changed since.
    pub fn put(&self, hash: &str, row: &GateRow, generation: u64, read_at: Instant) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if generation != self::generation() {
            return;
        }
        if kept.len() >= CAPACITY {
            kept.retain(|_, k| k.generation == generation && k.at.elapsed() < TTL);
            if kept.len() >= CAPACITY {
                kept.clear();
            }
        }
        kept.insert(
            hash.to_string(),
            Kept {
                at: read_at,
                generation,
                row: row.clone(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> GateRow {
        GateRow {
            token_id: id.into(),
            token_hash: format!("h-{id}"),
            tenant_id: "t".into(),
            tenant_slug: "s".into(),
            provisioning_enabled: true,
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
            access_token: false,
        }
    }

    #[test]
    fn answers_are_reused_until_a_change_or_the_ttl() {
        let c = GateCache::default();
        let g = generation();
        c.put("h-a", &row("a"), g, Instant::now());
        // Other tests in this process may change the generation; only then is it gone.
        if generation() == g {
            assert_eq!(c.get("h-a").map(|r| r.token_id), Some("a".into()));
        }
        credentials_changed();
        assert!(c.get("h-a").is_none(), "a change empties the cache");

        let g = generation();
        c.put("h-b", &row("b"), g, Instant::now() - TTL);
        assert!(c.get("h-b").is_none(), "older than the TTL");
    }

    #[test]
    fn a_lookup_older_than_a_change_is_not_kept() {
        let c = GateCache::default();
        let before = generation();
        credentials_changed();
        c.put("h-c", &row("c"), before, Instant::now());
        assert!(c.get("h-c").is_none());
    }
}
