//! Webhook secrets at rest: encrypted with ChaCha20-Poly1305 under `FLOWMETER_SECRET_KEY`
//! (32 random bytes, base64), a fresh 96-bit nonce per secret. The project id is the
//! associated data, so a ciphertext copied to another project's row does not decrypt.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use uuid::Uuid;

/// The key that encrypts webhook secrets.
#[derive(Clone)]
pub struct SecretKey(Key);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

/// A secret as stored: nonce and ciphertext (with its tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// 12 bytes.
    pub nonce: Vec<u8>,
    /// The encrypted secret followed by its 16-byte tag.
    pub ciphertext: Vec<u8>,
}

impl SecretKey {
    /// Parses `FLOWMETER_SECRET_KEY`: standard base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        if bytes.len() != 32 {
            return Err(format!(
                "must be 32 bytes in base64 (e.g. `openssl rand -base64 32`), got {} bytes",
                bytes.len()
            ));
        }
        Ok(Self(*Key::from_slice(&bytes)))
    }

    /// Encrypts a project's secret.
    pub fn seal(&self, project: Uuid, secret: &[u8]) -> Sealed {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: secret,
            aad: project.as_bytes(),
        };
        let ciphertext = ChaCha20Poly1305::new(&self.0)
            .encrypt(Nonce::from_slice(&nonce), payload)
            // Encryption fails only for messages beyond the cipher's limit (~256 GiB).
            .unwrap_or_default();
        Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }

    /// Decrypts a project's secret; `None` when it was sealed with another key or for
    /// another project, or was altered.
    pub fn open(&self, project: Uuid, sealed: &Sealed) -> Option<Vec<u8>> {
        if sealed.nonce.len() != 12 {
            return None;
        }
        let payload = Payload {
            msg: &sealed.ciphertext,
            aad: project.as_bytes(),
        };
        ChaCha20Poly1305::new(&self.0)
            .decrypt(Nonce::from_slice(&sealed.nonce), payload)
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_project() {
        let key = SecretKey::parse(KEY).unwrap();
        let project = Uuid::new_v4();
        let sealed = key.seal(project, b"hunter2");
        assert_ne!(sealed.ciphertext, b"hunter2");
        assert_eq!(key.open(project, &sealed).as_deref(), Some(&b"hunter2"[..]));
        assert_eq!(key.open(Uuid::new_v4(), &sealed), None);
        let other =
            SecretKey::parse(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap();
        assert_eq!(other.open(project, &sealed), None);
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert_eq!(key.open(project, &altered), None);
        // A fresh nonce each time.
        assert_ne!(key.seal(project, b"hunter2").nonce, sealed.nonce);
    }

    #[test]
    fn the_key_must_be_32_bytes_of_base64() {
        assert!(SecretKey::parse("not base64!").is_err());
        assert!(SecretKey::parse("c2hvcnQ=")
            .unwrap_err()
            .contains("32 bytes"));
    }
}
