//! Authenticated encryption and randomness for everything we hand to a browser (ground
//! floor: sessions, sign-in state, hand-off links and the identity keys use it).
//!
//! AES-256-GCM (ring) with a random 96-bit nonce per seal; the purpose (a cookie name, or
//! a label such as `handoff`) is bound as associated data, so a value sealed for one use
//! never opens as another. Keys are derived with HKDF-SHA256 from the configured secret
//! and a purpose label, so one secret yields independent keys.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The largest sealed value we agree to open (a cookie is at most 4 KiB anyway).
const MAX_SEALED: usize = 8 * 1024;

/// A sealing key.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

struct Len(usize);

impl ring::hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// Derives 32 bytes from `secret` for `purpose` (HKDF-SHA256).
pub fn derive(secret: &[u8; 32], purpose: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"portcullis/v1");
    let prk = salt.extract(secret);
    let info = [purpose.as_bytes()];
    // 32 bytes is far below HKDF-SHA256's limit, so expand and fill cannot fail.
    if let Ok(okm) = prk.expand(&info, Len(32)) {
        let _ = okm.fill(&mut out);
    }
    out
}

/// 32 random bytes.
pub fn random_32() -> [u8; 32] {
    let mut b = [0u8; 32];
    // The OS RNG failing is not recoverable in any meaningful way; an all-zero value
    // would be a disaster, so retry until it works.
    while SystemRandom::new().fill(&mut b).is_err() {}
    b
}

/// `n` random bytes as base64url.
pub fn random_token(n: usize) -> String {
    let mut b = vec![0u8; n];
    while SystemRandom::new().fill(&mut b).is_err() {}
    URL_SAFE_NO_PAD.encode(b)
}

impl Sealer {
    /// A sealer keyed from `secret` for `purpose`.
    pub fn new(secret: &[u8; 32], purpose: &str) -> Self {
        let key_bytes = derive(secret, purpose);
        // AES-256 takes exactly 32 bytes, which `derive` always returns.
        let unbound = UnboundKey::new(&AES_256_GCM, &key_bytes)
            .unwrap_or_else(|_| unreachable!("32-byte key"));
        Self {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        }
    }

    /// Seals `plaintext` for `purpose` → base64url text.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        while self.rng.fill(&mut nonce).is_err() {}
        let mut buf = plaintext.to_vec();
        // Sealing only fails for inputs larger than GCM's limit (64 GiB).
        if self
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut buf,
            )
            .is_err()
        {
            return String::new();
        }
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Opens a sealed value; None when it is malformed, tampered with, sealed under
    /// another key or for another purpose.
    pub fn open(&self, purpose: &str, sealed: &str) -> Option<Vec<u8>> {
        if sealed.len() > MAX_SEALED {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return None;
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let s = Sealer::new(&[7; 32], "cookie");
        let sealed = s.seal("_pomerium", b"hello");
        assert_eq!(s.open("_pomerium", &sealed).as_deref(), Some(&b"hello"[..]));
        assert_eq!(s.open("_other", &sealed), None, "purpose is bound");
        assert_eq!(
            Sealer::new(&[8; 32], "cookie").open("_pomerium", &sealed),
            None,
            "foreign key"
        );
        assert_eq!(
            Sealer::new(&[7; 32], "state").open("_pomerium", &sealed),
            None,
            "other derived key"
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            s.open("_pomerium", std::str::from_utf8(&tampered).unwrap()),
            None
        );
        assert_eq!(s.open("_pomerium", &sealed[..10]), None, "truncated");
        assert_eq!(s.open("_pomerium", "!!!"), None);
        assert_ne!(s.seal("_pomerium", b"hello"), sealed, "random nonce");
    }
}
