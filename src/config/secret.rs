//! Secret values: loaded like any other setting, never printed.
//!
//! [`Secret`] redacts itself in `Debug` and `Display`, so a secret cannot reach a log line
//! or an error page by accident; code that needs the bytes asks for them explicitly.

use std::fmt;

/// A secret string (client secret, shared secret, API token, PEM key…).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only where the value is used, never to format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A 32-byte key given as base64 (`shared_secret`, `cookie_secret`).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(pub [u8; 32]);

impl SecretKey {
    /// Decodes base64 of exactly 32 bytes. The error never contains the value.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = super::reader::decode_base64(text.trim()).ok_or_else(|| {
            "expected base64 of 32 random bytes (see `portcullis gen-secret`)".to_owned()
        })?;
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "decodes to {} bytes; 32 are needed (see `portcullis gen-secret`)",
                bytes.len()
            )
        })?;
        Ok(Self(key))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn keys_need_32_bytes() {
        let ok = SecretKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        assert!(!format!("{ok:?}").contains("AAAA"));
        assert!(
            SecretKey::from_base64("AAAA")
                .unwrap_err()
                .contains("3 bytes")
        );
        assert!(SecretKey::from_base64("!!").is_err());
    }
}
