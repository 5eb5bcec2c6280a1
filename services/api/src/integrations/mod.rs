//! Adapters that turn other systems' notifications into Flowmeter events: GitHub webhooks
//! (`github`), verified with a per-project secret kept encrypted (`secrets`).

pub mod github;
pub mod secrets;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Whether `header` (`X-Hub-Signature-256: sha256=<hex>`) is the HMAC-SHA256 of `body`
/// under `secret`. The comparison is constant-time (`Mac::verify_slice`).
pub fn signature_matches(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_digest) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The `X-Hub-Signature-256` value GitHub sends for `body` under `secret`.
pub fn signature_of(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_only_for_the_same_secret_and_body() {
        // The example of GitHub's documentation on validating deliveries.
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signature_matches(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            Some(header)
        ));
        assert_eq!(
            signature_of(b"It's a Secret to Everybody", b"Hello, World!"),
            header
        );
        assert!(!signature_matches(
            b"another secret",
            b"Hello, World!",
            Some(header)
        ));
        assert!(!signature_matches(
            b"It's a Secret to Everybody",
            b"Hello, World?",
            Some(header)
        ));
        assert!(!signature_matches(b"s", b"b", None));
        assert!(!signature_matches(b"s", b"b", Some("sha1=00")));
        assert!(!signature_matches(b"s", b"b", Some("sha256=zz")));
    }
}
