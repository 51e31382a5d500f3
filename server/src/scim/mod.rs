//! SCIM 2.0 (RFC 7643/7644): pure protocol code (schema, filter, patch, projection) and, on
//! top of it, the HTTP endpoint under `/scim/v2/{tenant-slug}`.

pub mod bulk;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod groups;
pub mod index;
pub mod limits;
pub mod patch;
pub mod projection;
pub mod query;
pub mod resource;
pub mod routes;
pub mod schema;
pub mod users;
pub mod wire;

/// Writes the search index of every user and group that has none yet (rows from before the
/// index existed, and admins created by the console or CLI), in batches. Returns how many.
pub async fn reindex_pending(db: &crate::store::Db) -> crate::store::StoreResult<u64> {
    use crate::store::{scim_groups, scim_users};
    let mut done = 0u64;
    loop {
        let batch = scim_users::unindexed(db, 500).await?;
        if batch.is_empty() {
            break;
        }
        for (_, rec) in &batch {
            scim_users::set_index(db, &rec.id, &users::search_index(rec)).await?;
            done += 1;
        }
    }
    loop {
        let batch = scim_groups::unindexed(db, 500).await?;
        if batch.is_empty() {
            break;
        }
        for rec in &batch {
            scim_groups::set_index(db, &rec.id, &groups::search_index(rec)).await?;
            done += 1;
        }
    }
    Ok(done)
}
