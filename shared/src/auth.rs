//! API key primitives: generation, hashing and roles. Only the SHA-256 hash of a key is
//! ever stored; the key itself is shown once, at creation.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every key starts with this, so leaked keys are easy to recognise in logs and scanners.
pub const KEY_PREFIX: &str = "fm_";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads every metrics endpoint, actions included.
    Viewer,
    /// Viewer plus acknowledging alerts.
    Planner,
    /// Appends events through `POST /v1/events`.
    Ingest,
    /// Everything, key management included.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Planner, Role::Ingest, Role::Admin];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Planner => "planner",
            Role::Ingest => "ingest",
            Role::Admin => "admin",
        }
    }

    /// Whether holding `self` grants what `needed` grants.
    pub fn grants(self, needed: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::Planner => matches!(needed, Role::Planner | Role::Viewer),
            Role::Viewer => needed == Role::Viewer,
            Role::Ingest => needed == Role::Ingest,
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| format!("unknown role {s:?}; expected viewer, planner, ingest or admin"))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A freshly generated key: 32 random bytes, hex-encoded behind [`KEY_PREFIX`].
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a key: hex SHA-256 of its text.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The first characters of a key, kept to tell keys apart in listings.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(KEY_PREFIX.len() + 4).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_hashed() {
        let a = generate_key();
        let b = generate_key();
        assert!(a.starts_with("fm_") && a.len() == 3 + 64);
        assert_ne!(a, b);
        assert_eq!(hash_key(&a).len(), 64);
        assert_ne!(hash_key(&a), a);
    }

    #[test]
    fn roles_grant_what_the_spec_says() {
        assert!(Role::Admin.grants(Role::Ingest));
        assert!(Role::Planner.grants(Role::Viewer));
        assert!(!Role::Viewer.grants(Role::Planner));
        assert!(!Role::Viewer.grants(Role::Ingest));
        assert!(!Role::Ingest.grants(Role::Viewer));
    }
}
