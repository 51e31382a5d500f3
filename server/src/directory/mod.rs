//! The directory service: creating, replacing, patching and removing an organisation's users
//! and groups under the connector's rules (mandatory attributes, passwords never stored, soft
//! deletion of users, unique keys, member rules), each operation one unit of work in the
//! store.
//!
//! The SCIM handlers and `/Bulk` both call it; neither repeats a rule. It speaks SCIM documents
//! (the directory's resources are SCIM resources) but knows nothing of HTTP: the handlers turn
//! requests into its calls and its [`DirError`] into SCIM error bodies (`scim::wire`).

pub mod groups;
pub mod users;

use std::sync::{Arc, OnceLock};

use crate::clock::Clock;
use crate::scim::error::ScimError;
use crate::scim::schema::ResourceKind;
use crate::store::batch::Batcher;
use crate::store::{Db, StoreError, UniqueKey};

pub use crate::scim::resource::ScimTenant;

/// What an operation needs: the database, SQLite's group commit, the clock.
#[derive(Clone)]
pub struct Directory {
    pub db: Db,
    pub writes: Option<Batcher>,
    pub clock: Arc<dyn Clock>,
}

/// The provisioning log entry a change of a user is recorded under, and what the change tells
/// the log back: the entry of the user's change before it. Entries linked so form each user's
/// history (the console follows it); the log layer makes one per SCIM request or Bulk
/// operation, and a change nobody logs takes [`LogLink::default`].
#[derive(Debug, Clone, Default)]
pub struct LogLink {
    entry_id: Option<String>,
    /// Set when the change was written: the entry it followed, if any.
    written: Arc<OnceLock<Option<String>>>,
}

impl LogLink {
    pub fn for_entry(entry_id: String) -> LogLink {
        LogLink {
            entry_id: Some(entry_id),
            written: Arc::default(),
        }
    }

    pub fn entry_id(&self) -> Option<&str> {
        self.entry_id.as_deref()
    }

    /// The change was written after the entry `prev` (`None`: the user's first logged one).
    pub(crate) fn written_after(&self, prev: Option<String>) {
        if self.entry_id.is_some() {
            let _ = self.written.set(prev);
        }
    }

    /// Whether the change was written (the user's row now points to this entry), and the entry
    /// it followed.
    pub fn chained(&self) -> Option<Option<String>> {
        self.written.get().cloned()
    }
}

/// How a directory operation failed. The SCIM layer maps each variant to one answer.
#[derive(Debug)]
pub enum DirError {
    /// The request breaks a rule of SCIM or of the connector (a 400 with its `scimType`, or
    /// another client error the protocol core chose).
    Invalid(ScimError),
    NotFound {
        kind: ResourceKind,
        id: String,
    },
    /// A unique key is taken: which key, and the value that collided.
    Taken {
        kind: ResourceKind,
        key: UniqueKey,
        value: String,
    },
    /// The client's `If-Match`/`If-None-Match` does not hold for the current version.
    Precondition(String),
    /// The resource changed after the version the client pinned with `If-Match`.
    Stale {
        kind: ResourceKind,
    },
    /// Concurrent changes kept getting in; the client should retry.
    Busy {
        kind: ResourceKind,
    },
    /// The change would leave the organisation without an active admin.
    LastAdmin,
    /// The database failed.
    Store(StoreError),
}

pub type DirResult<T> = Result<T, DirError>;

impl From<ScimError> for DirError {
    fn from(e: ScimError) -> Self {
        DirError::Invalid(e)
    }
}

impl From<crate::scim::patch::PatchError> for DirError {
    fn from(e: crate::scim::patch::PatchError) -> Self {
        DirError::Invalid(e.into())
    }
}

impl From<StoreError> for DirError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::LastAdmin => DirError::LastAdmin,
            e => DirError::Store(e),
        }
    }
}

/// A store result whose "not found" means that this resource does not exist.
fn found<T>(r: crate::store::StoreResult<T>, kind: ResourceKind, id: &str) -> DirResult<T> {
    r.map_err(|e| match e {
        StoreError::NotFound => DirError::NotFound {
            kind,
            id: id.to_string(),
        },
        e => e.into(),
    })
}

/// The client's preconditions (RFC 7644 §3.14), as sent: `If-Match` and `If-None-Match`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
}

impl Preconditions {
    /// A stale `If-Match`, or an `If-None-Match` naming the current version, fails a write.
    pub fn check(&self, current: &str) -> DirResult<()> {
        if lists(&self.if_match, current) == Some(false) {
            return Err(DirError::Precondition(format!(
                "The resource has changed: its version is now {current}."
            )));
        }
        if lists(&self.if_none_match, current) == Some(true) {
            return Err(DirError::Precondition(
                "The resource already exists at that version.".into(),
            ));
        }
        Ok(())
    }

    /// For a read: an `If-None-Match` naming the current version answers 304 Not Modified.
    pub fn not_modified(&self, current: &str) -> bool {
        lists(&self.if_none_match, current) == Some(true)
    }

    /// True when the client pinned a version: a write then fails instead of being re-applied
    /// on a newer one.
    pub fn pins_version(&self) -> bool {
        self.if_match.is_some()
    }
}

/// Whether a header's list of entity tags names `current` (`*` names any), compared weakly
/// (`W/"3"` and `"3"` are the same version); `None` when the header was not sent.
fn lists(header: &Option<String>, current: &str) -> Option<bool> {
    header.as_deref().map(|v| {
        v.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == current.trim_start_matches("W/"))
    })
}

/// Tries a change computed from a read this many times when concurrent writes get in between
/// (and the client pinned no version), so parallel changes never lose one.
const ATTEMPTS: usize = 16;

/// Runs `attempt` (read, compute, write pinned to the version read; `None` when the row moved)
/// until a write lands. A version the client pinned is not re-applied: the change is stale.
async fn until_written<T, F, Fut>(
    kind: ResourceKind,
    pre: &Preconditions,
    mut attempt: F,
) -> DirResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = DirResult<Option<T>>>,
{
    for _ in 0..ATTEMPTS {
        match attempt().await? {
            Some(saved) => return Ok(saved),
            None if pre.pins_version() => return Err(DirError::Stale { kind }),
            None => continue,
        }
    }
    Err(DirError::Busy { kind })
}

/// Writes the search index of every user and group that has none yet (rows from before the
/// index existed, and admins created by the console or CLI), in batches. Returns how many.
pub async fn reindex_pending(db: &Db) -> crate::store::StoreResult<u64> {
    use crate::store::{scim_groups, scim_users};
    let mut done = 0u64;
    loop {
        let batch = scim_users::unindexed(db, 500).await?;
        if batch.is_empty() {
            break;
        }
        for (_, rec) in &batch {
            scim_users::set_index(db, &rec.id, rec.version, &users::search_index(rec)).await?;
            done += 1;
        }
    }
    loop {
        let batch = scim_groups::unindexed(db, 500).await?;
        if batch.is_empty() {
            break;
        }
        for rec in &batch {
            scim_groups::set_index(db, &rec.id, rec.version, &groups::search_index(rec)).await?;
            done += 1;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditions_follow_rfc_7644() {
        let none = Preconditions::default();
        assert!(none.check("W/\"3\"").is_ok());
        assert!(!none.pins_version());
        let m = |v: &str| Preconditions {
            if_match: Some(v.into()),
            if_none_match: None,
        };
        assert!(m("W/\"3\"").check("W/\"3\"").is_ok());
        assert!(m("\"3\"").check("W/\"3\"").is_ok(), "weak comparison");
        assert!(m("*").check("W/\"9\"").is_ok());
        assert!(m("W/\"1\", W/\"3\"").check("W/\"3\"").is_ok());
        assert!(matches!(
            m("W/\"2\"").check("W/\"3\""),
            Err(DirError::Precondition(d)) if d.contains("W/\"3\"")
        ));
        assert!(m("W/\"2\"").pins_version());
        let n = Preconditions {
            if_match: None,
            if_none_match: Some("W/\"3\"".into()),
        };
        assert!(matches!(n.check("W/\"3\""), Err(DirError::Precondition(_))));
        assert!(n.check("W/\"4\"").is_ok());
        // A read compares the same way: one rule for GET's 304 and for writes.
        assert!(n.not_modified("W/\"3\""));
        assert!(!n.not_modified("W/\"4\""));
        let strong = Preconditions {
            if_match: None,
            if_none_match: Some("\"7\", \"3\"".into()),
        };
        assert!(strong.not_modified("W/\"3\""), "weak comparison");
        assert!(!none.not_modified("W/\"3\""));
    }
}
