//! Secrets: admin passwords (argon2id), random session secrets and their hashes.

pub mod password;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 bits from a CSPRNG (rand's thread-local ChaCha, seeded by the OS), hex-encoded
/// (64 characters).
pub fn random_secret_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of a high-entropy secret, hex-encoded: what the database stores instead of it.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Every SCIM token starts with this, so secret scanners can recognise a leaked one.
pub const SCIM_TOKEN_PREFIX: &str = "bbz_scim_";

/// A new SCIM bearer token: the prefix and 256 random bits (73 characters).
pub fn new_scim_token() -> String {
    format!("{SCIM_TOKEN_PREFIX}{}", random_secret_hex())
}

/// The non-secret form shown after the one-time display: prefix and last four characters.
pub fn token_hint(token: &str) -> String {
    let tail: String = token
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{SCIM_TOKEN_PREFIX}…{tail}")
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    constant_time_eq_bytes(a.as_bytes(), b.as_bytes())
}

pub fn constant_time_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hash_stably() {
        let a = random_secret_hex();
        let b = random_secret_hex();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(sha256_hex("abc"), sha256_hex("abc"));
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn scim_tokens_are_prefixed_long_and_hinted_without_the_secret() {
        let t = new_scim_token();
        assert!(t.starts_with("bbz_scim_"));
        assert_eq!(t.len(), 9 + 64);
        let hint = token_hint(&t);
        assert_eq!(hint, format!("bbz_scim_…{}", &t[t.len() - 4..]));
        assert!(!hint.contains(&t[9..20]));
        assert!(constant_time_eq(&t, &t.clone()));
        assert!(!constant_time_eq(&t, &new_scim_token()));
        assert!(!constant_time_eq("a", "ab"));
    }
}
