//! Argon2id password hashing into PHC strings, with memory that is reused
//! from one hash to the next: each hash needs 19 MiB, and allocating it
//! afresh every time leaves the allocator holding far more than that.

use std::sync::OnceLock;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

/// Hashes and verifies passwords, keeping its Argon2 memory between calls.
#[derive(Debug, Default)]
pub struct Hasher {
    blocks: Vec<Block>,
}

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// An Argon2id PHC string (default parameters, fresh random salt).
    pub fn hash(&mut self, password: &str) -> Result<String, HashError> {
        let fail = |err: &dyn std::fmt::Display| HashError(err.to_string());
        let salt = random_salt().map_err(|e| fail(&e))?;
        let params = Params::default();
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| fail(&e))?;
        let blocks = self.blocks_for(&params);
        let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
            argon2
                .hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, blocks)
                .map_err(Into::into)
        })
        .map_err(|e| fail(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: (&params).try_into().map_err(|e| fail(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches the PHC string `phc`. The final
    /// comparison is constant-time (`Output`'s equality).
    pub fn verify(&mut self, phc: &str, password: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
            return false;
        };
        let version = parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from);
        let (Ok(version), Ok(params)) = (version, Params::try_from(&parsed)) else {
            return false;
        };
        let mut salt_bytes = [0u8; 64];
        let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
            return false;
        };
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let blocks = self.blocks_for(&params);
        let computed = Output::init_with(expected.len(), |out| {
            argon2
                .hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, blocks)
                .map_err(Into::into)
        });
        computed.is_ok_and(|computed| computed == expected)
    }

    /// Verifies against a looked-up account, or against a decoy hash when
    /// there is none, so both cases cost one Argon2 run; returns the
    /// account's name when the password is right.
    pub fn check(&mut self, found: Option<(String, String)>, password: &str) -> Option<String> {
        match found {
            Some((name, hash)) => self.verify(&hash, password).then_some(name),
            None => {
                self.verify(decoy_hash(), password);
                None
            }
        }
    }

    /// Gives the Argon2 memory back; the next hash allocates it again.
    pub fn release(&mut self) {
        self.blocks = Vec::new();
    }

    fn blocks_for(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.blocks.len() < needed {
            self.blocks.resize(needed, Block::default());
        }
        &mut self.blocks[..needed]
    }
}

/// A fresh 16-byte salt from the operating system's random generator.
fn random_salt() -> Result<SaltString, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    SaltString::encode_b64(&bytes).map_err(|e| e.to_string())
}

/// The hash of a random password nobody knows, with the default parameters.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the operating system's random generator works");
        let secret: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
        Hasher::new()
            .hash(&secret)
            .expect("hashing with default parameters succeeds")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[test]
    fn hashes_are_standard_phc_strings() {
        let mut hasher = Hasher::new();
        let phc = hasher.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        // The argon2 crate's own verifier agrees, both ways.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );
        assert!(hasher.verify(&phc, "correct horse"));
        assert!(!hasher.verify(&phc, "wrong horse"));
        assert!(!hasher.verify("not a hash", "correct horse"));
        let other = argon2::PasswordHasher::hash_password(
            &Argon2::default(),
            b"made elsewhere",
            &random_salt().unwrap(),
        )
        .unwrap()
        .to_string();
        assert!(hasher.verify(&other, "made elsewhere"));
    }

    #[test]
    fn check_runs_for_missing_accounts_too() {
        let mut hasher = Hasher::new();
        let phc = hasher.hash("secret password").unwrap();
        let found = Some(("Alice".to_owned(), phc));
        assert_eq!(
            hasher.check(found.clone(), "secret password").as_deref(),
            Some("Alice")
        );
        assert_eq!(hasher.check(found, "wrong"), None);
        assert_eq!(hasher.check(None, "secret password"), None);
    }

    #[test]
    fn same_password_gets_different_salts() {
        let mut hasher = Hasher::new();
        assert_ne!(hasher.hash("same").unwrap(), hasher.hash("same").unwrap());
    }
}
