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
pub mod resources;
pub mod routes;
pub mod schema;
pub mod users;
pub mod wire;
