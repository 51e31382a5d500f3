//! SCIM 2.0 (RFC 7643/7644): pure protocol code (schema, filter, patch, projection) and, on
//! top of it, the HTTP endpoint.

pub mod filter;
pub mod patch;
pub mod projection;
pub mod schema;
