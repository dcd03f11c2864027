//! Just enough DER to tell what kind of private key a PEM block holds and to pull the
//! private scalar out of an EC key. Parsing here never panics: anything unexpected is
//! `None`, and the caller names the problem.

pub(super) const INTEGER: u8 = 0x02;
pub(super) const OCTET_STRING: u8 = 0x04;
pub(super) const OID: u8 = 0x06;
pub(super) const SEQUENCE: u8 = 0x30;
/// `[0]` constructed: the curve parameters of a SEC1 `ECPrivateKey`.
pub(super) const CONTEXT_0: u8 = 0xA0;

/// `id-ecPublicKey` (1.2.840.10045.2.1).
pub(super) const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
/// `prime256v1` / P-256 (1.2.840.10045.3.1.7).
pub(super) const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// `rsaEncryption` (1.2.840.113549.1.1.1).
pub(super) const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];

/// Reads one tag-length-value: `(tag, contents, rest)`.
pub(super) fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// Reads one TLV that must have `tag`: `(contents, rest)`.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    read_tlv(input).and_then(|(t, c, r)| (t == tag).then_some((c, r)))
}

/// A PKCS#8 `PrivateKeyInfo`, split: algorithm OID, its parameters when they are an OID
/// (the curve of an EC key), and the contents of the `privateKey` octet string.
pub(super) struct Pkcs8<'a> {
    pub algorithm: &'a [u8],
    pub parameters: Option<&'a [u8]>,
    pub private_key: &'a [u8],
}

/// Splits a PKCS#8 `PrivateKeyInfo` (v1 or v2).
pub(super) fn pkcs8(der: &[u8]) -> Option<Pkcs8<'_>> {
    let (info, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(info, INTEGER)?;
    let (alg, rest) = expect(rest, SEQUENCE)?;
    let (algorithm, params) = expect(alg, OID)?;
    let parameters = expect(params, OID).map(|(p, _)| p);
    let (private_key, _) = expect(rest, OCTET_STRING)?;
    Some(Pkcs8 {
        algorithm,
        parameters,
        private_key,
    })
}

/// A SEC1 `ECPrivateKey`, split: the private scalar's bytes and the curve OID, when
/// the key names one.
pub(super) fn sec1(der: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let (key, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(key, INTEGER)?;
    let (scalar, rest) = expect(rest, OCTET_STRING)?;
    let curve = expect(rest, CONTEXT_0)
        .and_then(|(params, _)| expect(params, OID))
        .map(|(oid, _)| oid);
    Some((scalar, curve))
}

/// A readable name for a key algorithm or curve OID, for error messages.
pub(super) fn oid_name(oid: &[u8]) -> &'static str {
    match oid {
        OID_EC_PUBLIC_KEY => "EC",
        OID_P256 => "P-256",
        OID_RSA => "RSA",
        [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A] => "RSA-PSS",
        [0x2B, 0x81, 0x04, 0x00, 0x22] => "P-384",
        [0x2B, 0x81, 0x04, 0x00, 0x23] => "P-521",
        [0x2B, 0x81, 0x04, 0x00, 0x0A] => "secp256k1",
        [0x2B, 0x65, 0x70] => "Ed25519",
        [0x2B, 0x65, 0x71] => "Ed448",
        [0x2B, 0x65, 0x6E] => "X25519",
        [0x2B, 0x65, 0x6F] => "X448",
        [0x2A, 0x86, 0x48, 0xCE, 0x38, 0x04, 0x01] => "DSA",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_reads_short_and_long_lengths_and_rejects_truncation() {
        assert_eq!(
            read_tlv(&[0x04, 0x02, 1, 2, 9]),
            Some((0x04, &[1u8, 2][..], &[9u8][..]))
        );
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([7u8; 0x80]);
        assert_eq!(read_tlv(&long).map(|(_, c, _)| c.len()), Some(0x80));
        assert_eq!(read_tlv(&[0x04, 0x05, 1]), None);
        assert_eq!(read_tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(read_tlv(&[]), None);
    }
}
