//! The token side of the mock OpenID Provider (`idp.rs`): `/token`, `/userinfo` and
//! `/revoke`, the signing keys, and ID-token minting.
//!
//! Well-formed tokens are signed by openidconnect's provider-side types (RS256). The
//! deliberately broken ones a strict relying party must reject (`alg: none`, HS256 keyed
//! with the RSA public key, a corrupted signature, an unknown `kid`) are built here.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use http::{Response, header};
use http_body_util::Full;
use openidconnect::core::{
    CoreGenderClaim, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    AccessToken, AdditionalClaims, IdToken, IdTokenClaims, JsonWebKeyId, PrivateSigningKey,
};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::form_urlencoded;

use super::{
    Behaviour, Grant, Pairs, Resp, Shared, TestUser, TokenRequestSeen, get, json_resp, now,
    oauth_error,
};

const PEM_1: &str = include_str!("../../fixtures/idp-rsa.pem");
const PEM_2: &str = include_str!("../../fixtures/idp-rsa-2.pem");

impl Shared {
    /// `POST /token`: authorization_code and refresh_token grants.
    pub(super) async fn token(&self, auth: Option<&str>, form: Pairs, b: &Behaviour) -> Resp {
        let grant_type = get(&form, "grant_type").unwrap_or("").to_owned();
        let (auth_method, creds) = client_credentials(auth, &form);
        {
            let mut st = self.state();
            match grant_type.as_str() {
                "authorization_code" => st.token_requests += 1,
                "refresh_token" => st.refresh_requests += 1,
                _ => {}
            }
            st.last_token = Some(TokenRequestSeen {
                auth_method,
                client_id: creds
                    .as_ref()
                    .map(|c| c.0.clone())
                    .or(get(&form, "client_id").map(Into::into)),
                grant_type: grant_type.clone(),
                code_verifier_present: get(&form, "code_verifier").is_some(),
                redirect_uri: get(&form, "redirect_uri").map(Into::into),
                form: form.clone(),
            });
        }
        if b.token_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(b.token_delay_ms)).await;
        }
        if let Some(resp) = self.reject_client(auth_method, creds) {
            return resp;
        }
        match grant_type.as_str() {
            "authorization_code" => self.code_grant(&form, b),
            "refresh_token" => self.refresh_grant(&form, b),
            _ => oauth_error(
                400,
                "unsupported_grant_type",
                "only authorization_code and refresh_token",
            ),
        }
    }

    /// The error response for a client that failed to authenticate, if it did.
    fn reject_client(&self, method: &str, creds: Option<(String, String)>) -> Option<Resp> {
        if method == "multiple" {
            return Some(oauth_error(
                400,
                "invalid_request",
                "more than one client authentication",
            ));
        }
        if self.opts.require_auth_method.is_some_and(|m| m != method) {
            return Some(oauth_error(
                401,
                "invalid_client",
                "client authentication method not allowed",
            ));
        }
        match creds {
            Some((id, secret))
                if id == self.opts.client_id && secret == self.opts.client_secret =>
            {
                None
            }
            _ => Some(oauth_error(
                401,
                "invalid_client",
                "client authentication failed",
            )),
        }
    }

    /// `grant_type=authorization_code`: one-time code, redirect_uri and PKCE checks.
    fn code_grant(&self, form: &Pairs, b: &Behaviour) -> Resp {
        let code = get(form, "code").unwrap_or("");
        let Some(cg) = self.state().codes.remove(code) else {
            return oauth_error(400, "invalid_grant", "unknown or already used code");
        };
        if get(form, "redirect_uri") != Some(cg.redirect_uri.as_str()) {
            return oauth_error(400, "invalid_grant", "redirect_uri does not match");
        }
        if get(form, "code_verifier").is_none_or(|v| s256(v) != cg.challenge) {
            return oauth_error(400, "invalid_grant", "PKCE verification failed");
        }
        let sub = cg.grant.user.sub.clone();
        self.issue(&cg.grant, &sub, Some(&cg.nonce), Some(random_token()), b)
    }

    /// `grant_type=refresh_token`, honouring the `refresh_*` behaviour.
    fn refresh_grant(&self, form: &Pairs, b: &Behaviour) -> Resp {
        let token = get(form, "refresh_token").unwrap_or("");
        let consume = b.refresh_rotates && b.refresh_fails_with.is_none();
        let grant = {
            let mut st = self.state();
            if consume {
                st.refresh.remove(token)
            } else {
                st.refresh.get(token).cloned()
            }
        };
        let Some(grant) = grant else {
            return oauth_error(
                400,
                "invalid_grant",
                "unknown, revoked or already used refresh token",
            );
        };
        if let Some(error) = b.refresh_fails_with {
            let status = match error {
                "server_error" => 500,
                "temporarily_unavailable" => 503,
                _ => 400,
            };
            return oauth_error(
                status,
                error,
                "refresh refused by Behaviour::refresh_fails_with",
            );
        }
        let sub = b
            .refresh_id_token_sub
            .clone()
            .unwrap_or_else(|| grant.user.sub.clone());
        self.issue(&grant, &sub, None, consume.then(random_token), b)
    }

    /// Token response with a fresh access token, an ID token for `sub`, and `refresh`.
    fn issue(
        &self,
        grant: &Grant,
        sub: &str,
        nonce: Option<&str>,
        refresh: Option<String>,
        b: &Behaviour,
    ) -> Resp {
        let access = random_token();
        let ttl = self
            .state()
            .next_ttls
            .pop_front()
            .unwrap_or(self.opts.access_token_ttl);
        let id_token = self.id_token(&grant.user, sub, nonce, &access, b);
        let mut st = self.state();
        // A queued lifetime is only what the relying party is told; the provider itself
        // honours the token for the configured lifetime (so userinfo still works).
        let valid = now() + ttl.max(self.opts.access_token_ttl);
        st.access
            .insert(access.clone(), (grant.user.clone(), valid));
        st.last_access_token = Some(access.clone());
        let mut body = json!({
            "access_token": access, "token_type": "Bearer", "expires_in": ttl,
            "id_token": id_token, "scope": grant.scope,
        });
        if let Some(refresh) = refresh {
            st.refresh.insert(refresh.clone(), grant.clone());
            body["refresh_token"] = json!(refresh);
        }
        json_resp(200, &body)
    }

    /// A signed (or deliberately mis-signed) ID token as the behaviour says.
    fn id_token(
        &self,
        user: &TestUser,
        sub: &str,
        nonce: Option<&str>,
        access: &str,
        b: &Behaviour,
    ) -> String {
        let now = now() as i64;
        let ttl = self.opts.access_token_ttl as i64;
        let (iat, exp) = if b.id_token_expired {
            (now - ttl - 120, now - 120)
        } else {
            (now, now + ttl)
        };
        let mut aud = vec![self.opts.client_id.clone()];
        aud.extend(b.id_token_extra_audience.clone());
        let iss = match b.id_token_wrong_issuer {
            true => format!("{}/not-the-issuer", self.base),
            false => self.issuer.clone(),
        };
        let mut claims = json!({"iss": iss, "sub": sub, "aud": aud, "exp": exp, "iat": iat + b.id_token_iat_offset});
        if let Some(nonce) = nonce {
            claims["nonce"] = match b.id_token_wrong_nonce {
                true => json!(format!("wrong-{}", random_token())),
                false => json!(nonce),
            };
        }
        if let Some(email) = &user.email {
            claims["email"] = json!(email);
            claims["email_verified"] = json!(true);
        }
        if let Some(name) = &user.name {
            claims["name"] = json!(name);
        }
        if !user.groups.is_empty() {
            claims["groups"] = json!(user.groups);
        }
        if let Some(azp) = &b.id_token_azp {
            claims["azp"] = json!(azp);
        }
        if let Some(offset) = b.id_token_nbf_offset {
            claims["nbf"] = json!(now + offset);
        }
        let how = match b {
            b if b.id_token_alg_none => Signing::AlgNone,
            b if b.id_token_hs256_with_public_key => Signing::Hs256WithPublicKey,
            b if b.id_token_bad_signature => Signing::BadSignature,
            b if b.id_token_unknown_kid => Signing::UnknownKid,
            _ => Signing::Good,
        };
        let rotated = self.state().rotated;
        self.keys.mint(rotated, claims, access, how)
    }

    /// `GET|POST /userinfo` with a Bearer access token.
    pub(super) fn userinfo(&self, auth: Option<&str>, b: &Behaviour) -> Resp {
        let token = auth.and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        let found = self.state().access.get(token).cloned();
        let Some((user, _)) = found.filter(|(_, expires)| *expires > now()) else {
            let resp = Response::builder().status(401);
            let resp = resp.header(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"");
            return resp.body(Full::default()).expect("valid response");
        };
        let mut info =
            json!({"sub": b.userinfo_sub.clone().unwrap_or(user.sub), "groups": user.groups});
        if let Some(email) = user.email {
            info["email"] = json!(email);
            info["email_verified"] = json!(true);
        }
        if let Some(name) = user.name {
            info["name"] = json!(name);
        }
        json_resp(200, &info)
    }

    /// `POST /revoke` (RFC 7009): records and invalidates the token.
    pub(super) fn revoke(&self, auth: Option<&str>, form: &Pairs) -> Resp {
        let (method, creds) = client_credentials(auth, form);
        if let Some(resp) = self.reject_client(method, creds) {
            return resp;
        }
        let Some(token) = get(form, "token") else {
            return oauth_error(400, "invalid_request", "token is required");
        };
        let mut st = self.state();
        st.revocations.push(token.to_owned());
        st.access.remove(token);
        st.refresh.remove(token);
        json_resp(200, &json!({}))
    }
}

/// The client authentication method used and the (id, secret) it presented.
fn client_credentials(
    auth: Option<&str>,
    form: &Pairs,
) -> (&'static str, Option<(String, String)>) {
    let basic = auth.and_then(|h| h.strip_prefix("Basic ")).and_then(|b64| {
        let text = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
        let (id, secret) = text.split_once(':')?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        let decode = |s: &str| {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        Some((decode(id)?, decode(secret)?))
    });
    let post = get(form, "client_secret").map(|s| {
        (
            get(form, "client_id").unwrap_or("").to_owned(),
            s.to_owned(),
        )
    });
    match (basic, post) {
        (Some(c), None) => ("client_secret_basic", Some(c)),
        (None, Some(c)) => ("client_secret_post", Some(c)),
        (Some(_), Some(_)) => ("multiple", None),
        (None, None) => ("none", None),
    }
}

/// Claims beyond openidconnect's standard set that the mock puts in ID tokens.
#[derive(Debug, Serialize, Deserialize)]
struct ExtraClaims {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
}
impl AdditionalClaims for ExtraClaims {}

type Token = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// How an ID token is to be signed (or mis-signed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// RS256 with the current key and its `kid`.
    Good,
    /// `{"alg":"none"}` and an empty signature.
    AlgNone,
    /// HS256 keyed with the current key's public key, as PEM ("BEGIN PUBLIC KEY").
    Hs256WithPublicKey,
    /// RS256 with the current key, then one signature bit flipped.
    BadSignature,
    /// RS256 with key 2 under a `kid` the JWKS never lists.
    UnknownKid,
}

/// One RSA signing key.
pub struct Key {
    kid: &'static str,
    signer: CoreRsaPrivateSigningKey,
    spki_pem: String,
}

impl Key {
    fn load(pem: &str, kid: &'static str) -> Key {
        let signer = CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.into())))
            .expect("fixture must be a PKCS#1 RSA private key");
        Key {
            kid,
            signer,
            spki_pem: spki_pem(pem),
        }
    }
}

/// The provider's two keys (key 2 takes over at rotation) and an unpublished one.
pub struct Keys {
    first: Key,
    second: Key,
    unknown: Key,
}

impl Keys {
    /// Loads the fixture keys.
    pub fn load() -> Keys {
        Keys {
            first: Key::load(PEM_1, "idp-key-1"),
            second: Key::load(PEM_2, "idp-key-2"),
            unknown: Key::load(PEM_2, "no-such-kid"),
        }
    }

    /// The key that signs now.
    pub fn current(&self, rotated: bool) -> &Key {
        if rotated { &self.second } else { &self.first }
    }

    /// The `kid` of the key that signs now.
    pub fn current_kid(&self, rotated: bool) -> &'static str {
        self.current(rotated).kid
    }

    /// The SubjectPublicKeyInfo PEM of the key that signs now.
    pub fn current_public_pem(&self, rotated: bool) -> String {
        self.current(rotated).spki_pem.clone()
    }

    /// The JWKS document: key 1 before rotation; after it key 2, plus key 1 unless `only_current`.
    pub fn jwks(&self, rotated: bool, only_current: bool) -> Value {
        let mut keys = vec![self.current(rotated).signer.as_verification_key()];
        if rotated && !only_current {
            keys.push(self.first.signer.as_verification_key());
        }
        serde_json::to_value(CoreJsonWebKeySet::new(keys)).expect("JWKS serialises")
    }

    /// Signs `claims` (a JSON object of ID-token claims) the way `how` says; `at_hash` is
    /// added for `access_token`.
    pub fn mint(&self, rotated: bool, claims: Value, access_token: &str, how: Signing) -> String {
        let current = self.current(rotated);
        match how {
            Signing::Good => sign(current, claims, access_token),
            Signing::UnknownKid => sign(&self.unknown, claims, access_token),
            Signing::BadSignature => {
                let token = sign(current, claims, access_token);
                let (signed, sig) = token.rsplit_once('.').expect("compact JWS");
                let mut sig = B64.decode(sig).expect("base64url signature");
                let last = sig.last_mut().expect("non-empty signature");
                *last ^= 0x01;
                format!("{signed}.{}", B64.encode(sig))
            }
            Signing::AlgNone => {
                let signed = signing_input(&json!({"alg": "none", "typ": "JWT"}), &claims);
                format!("{signed}.")
            }
            Signing::Hs256WithPublicKey => {
                let header = json!({"alg": "HS256", "typ": "JWT", "kid": current.kid});
                let signed = signing_input(&header, &claims);
                let key =
                    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, current.spki_pem.as_bytes());
                let tag = ring::hmac::sign(&key, signed.as_bytes());
                format!("{signed}.{}", B64.encode(tag.as_ref()))
            }
        }
    }
}

fn sign(key: &Key, claims: Value, access_token: &str) -> String {
    let claims: IdTokenClaims<ExtraClaims, CoreGenderClaim> = serde_json::from_value(claims)
        .expect("mock ID-token claims must fit openidconnect's model");
    let at = AccessToken::new(access_token.to_owned());
    Token::new(
        claims,
        &key.signer,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        Some(&at),
        None,
    )
    .expect("RS256 signing")
    .to_string()
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

/// Wraps the PKCS#1 public key of a PKCS#1 private-key PEM in SubjectPublicKeyInfo PEM.
fn spki_pem(private_pem: &str) -> String {
    let b64: String = private_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(b64).expect("PEM body is base64");
    let pair = ring::signature::RsaKeyPair::from_der(&der).expect("PKCS#1 RSA key");
    let pkcs1 = pair.public().as_ref();
    // AlgorithmIdentifier { rsaEncryption, NULL }
    let alg_id = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let mut body = alg_id.to_vec();
    body.extend(der_tlv(0x03, &bits));
    let spki = der_tlv(0x30, &body);
    let text = STANDARD.encode(spki);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A fresh random token: 32 bytes, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("system randomness");
    B64.encode(bytes)
}

/// The PKCE S256 challenge of `verifier`: base64url (no padding) of its SHA-256.
pub fn s256(verifier: &str) -> String {
    B64.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}
