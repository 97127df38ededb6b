//! Random secrets (session cookies, API tokens, the setup link) and the hashes they are stored
//! and looked up by. A secret is 32 random bytes from the operating system's generator
//! (through `rand`'s thread generator, a CSPRNG seeded from it), written as hex with a prefix
//! that says what it is; only its SHA-256 is stored.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of API tokens, so a leaked one is easy to recognise (and to scan for).
pub const TOKEN_PREFIX: &str = "sbt_";

/// A new secret: `prefix` followed by 64 hex digits (256 random bits).
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut text = String::with_capacity(prefix.len() + 64);
    text.push_str(prefix);
    for byte in bytes {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// What a secret is stored and looked up by.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_unique_and_prefixed() {
        let a = generate(TOKEN_PREFIX);
        let b = generate(TOKEN_PREFIX);
        assert!(a.starts_with("sbt_") && a.len() == 68, "{a}");
        assert_ne!(a, b);
        assert_ne!(digest(&a), digest(&b));
        assert_eq!(digest(&a), digest(&a.clone()));
    }
}
