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
}
