//! Sign-in, session, directory and identity settings: `cookie_*`, the secrets, `idp_*`,
//! `jwt_*`, `pass_identity_headers`, `signout_redirect_url` and the session store.
//!
//! Invariant: secret values are held as [`Secret`]/[`SecretKey`] from the moment they
//! are read, and no problem message ever contains one.

use std::time::Duration;

use http::HeaderName;
use url::Url;

use super::access::{GroupsFilter, read_groups_filter};
use super::headers;
use super::reader::{Fields, Value, decode_base64};
use super::secret::{Secret, SecretKey};

/// All authentication-related settings.
#[derive(Clone, Debug)]
pub struct Auth {
    /// `authenticate_service_url`: the one host that runs the IdP callback.
    pub authenticate_service_url: Option<Url>,
    /// `signout_redirect_url`: where users land after signing out.
    pub signout_redirect_url: Option<Url>,
    /// Cookie attributes.
    pub cookie: Cookie,
    /// `shared_secret`: shared by all replicas.
    pub shared_secret: Option<SecretKey>,
    /// `cookie_secret`: seals session and state cookies.
    pub cookie_secret: Option<SecretKey>,
    /// `signing_key`: PEM key(s) signing the identity assertion.
    pub signing_key: Option<Secret>,
    /// The identity provider.
    pub idp: Idp,
    /// `pass_identity_headers` (default false): global default for routes.
    pub pass_identity_headers: bool,
    /// `jwt_claims_headers`: header name → claim.
    pub jwt_claims_headers: Vec<(HeaderName, String)>,
    /// `jwt_groups_filter`: the global default.
    pub jwt_groups_filter: Option<GroupsFilter>,
    /// The session store.
    pub storage: Storage,
}

/// Cookie attributes (`cookie_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cookie {
    /// `cookie_name` (default `_pomerium`).
    pub name: String,
    /// `cookie_domain`: widen the cookie to a parent domain. None: host-only.
    pub domain: Option<String>,
    /// `cookie_http_only` (default true).
    pub http_only: bool,
    /// `cookie_secure` (default true; always false with `insecure_server`).
    pub secure: bool,
    /// `cookie_expire` (default 14h): the hard limit of a session.
    pub expire: Duration,
    /// `cookie_same_site` (default lax).
    pub same_site: SameSite,
}

/// The `SameSite` cookie attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// `Strict`.
    Strict,
    /// `Lax`.
    Lax,
    /// `None` (needs `Secure`).
    None,
}

/// Identity provider settings (`idp_*`).
#[derive(Clone, Debug)]
pub struct Idp {
    /// `idp_provider`: `okta` or `oidc`.
    pub provider: Option<IdpKind>,
    /// `idp_provider_url`: the issuer, parsed.
    pub provider_url: Option<Url>,
    /// `idp_provider_url` exactly as written: discovery must advertise this very string.
    pub issuer: Option<String>,
    /// `idp_client_id`.
    pub client_id: Option<String>,
    /// `idp_client_secret` / `_file`.
    pub client_secret: Option<Secret>,
    /// `idp_scopes` (default `openid profile email offline_access`).
    pub scopes: Vec<String>,
    /// `idp_request_params`: extra authorize-URL parameters.
    pub request_params: Vec<(String, String)>,
    /// `idp_token_endpoint_auth_method`; None: the first the provider lists, else basic.
    pub token_endpoint_auth_method: Option<TokenAuthMethod>,
    /// `idp_groups_claim` (default `groups`).
    pub groups_claim: String,
    /// `idp_directory_url`: the Okta org whose Management API holds the groups, when it
    /// is not the origin of `idp_provider_url` (e.g. another provider signs users in).
    pub directory_url: Option<Url>,
    /// `idp_service_account`: the Okta API token.
    pub service_account: Option<Secret>,
    /// `idp_refresh_directory_interval` (default 10m).
    pub refresh_directory_interval: Duration,
    /// `idp_refresh_directory_timeout` (default 1m).
    pub refresh_directory_timeout: Duration,
    /// `idp_refresh_directory_max_staleness` (default 2× the interval): how long
    /// last-known groups are trusted while the directory cannot be reached.
    pub refresh_directory_max_staleness: Duration,
}

/// Supported identity providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdpKind {
    /// Okta, with optional group lookup through `idp_service_account`.
    Okta,
    /// Any OpenID Connect provider.
    Oidc,
}

/// How the client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAuthMethod {
    /// HTTP Basic.
    ClientSecretBasic,
    /// In the form body.
    ClientSecretPost,
}

/// Where sessions live.
#[derive(Clone, Debug)]
pub enum Storage {
    /// In this process (one replica).
    Memory,
    /// In Redis, shared by replicas; the connection string may hold a password.
    Redis(Secret),
}

/// Reads the authentication settings. `insecure` is `insecure_server`.
pub fn read(f: &mut Fields<'_>, insecure: bool) -> Auth {
    // Our own URLs may be plain http when the whole proxy is (insecure_server).
    let authenticate_service_url = read_url(f, "authenticate_service_url", insecure);
    let signout_redirect_url = read_url(f, "signout_redirect_url", insecure);
    let cookie = read_cookie(f, insecure);
    let shared_secret = read_key(f, "shared_secret", "shared_secret_file");
    let cookie_secret = read_key(f, "cookie_secret", "cookie_secret_file");
    let signing_key = f.secret("signing_key", "signing_key_file");
    let idp = read_idp(f);
    let pass_identity_headers = f.bool_or("pass_identity_headers", false);
    let jwt_claims_headers = match f.value("jwt_claims_headers") {
        Some(Value::Env(s)) => headers::claims_headers(Err(&s), "jwt_claims_headers", f.problems),
        Some(Value::File(n)) => headers::claims_headers(Ok(n), "jwt_claims_headers", f.problems),
        None => Vec::new(),
    };
    let jwt_groups_filter = f
        .node("jwt_groups_filter")
        .and_then(|n| read_groups_filter(n, "jwt_groups_filter", f.problems));
    let storage = read_storage(f);
    Auth {
        authenticate_service_url,
        signout_redirect_url,
        cookie,
        shared_secret,
        cookie_secret,
        signing_key,
        idp,
        pass_identity_headers,
        jwt_claims_headers,
        jwt_groups_filter,
        storage,
    }
}

fn read_url(f: &mut Fields<'_>, key: &'static str, allow_http: bool) -> Option<Url> {
    let text = f.string(key)?;
    let parsed = Url::parse(&text)
        .map_err(|e| format!("{text:?} is not a URL: {e}"))
        .and_then(|u| {
            match u.scheme() {
                "https" => Ok(u),
                // Plain http only where nothing can intercept it.
                "http" if allow_http || is_loopback(&u) => Ok(u),
                _ => Err(format!(
                    "{text:?} must be https (http is allowed only for loopback hosts)"
                )),
            }
        });
    f.ok_or_report(key, parsed)
}

/// True for `localhost`, `127.0.0.0/8` and `[::1]` URLs.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn read_key(f: &mut Fields<'_>, key: &'static str, file_key: &'static str) -> Option<SecretKey> {
    let secret = f.secret(key, file_key)?;
    let parsed = SecretKey::from_base64(secret.expose());
    f.ok_or_report(key, parsed)
}

fn read_cookie(f: &mut Fields<'_>, insecure: bool) -> Cookie {
    let name = f
        .string("cookie_name")
        .unwrap_or_else(|| "_pomerium".into());
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        f.problems.push(
            "cookie_name",
            format!("{name:?} is not a valid cookie name"),
        );
    }
    let domain = f
        .string("cookie_domain")
        .map(|d| d.trim_start_matches('.').to_ascii_lowercase());
    let http_only = f.bool_or("cookie_http_only", true);
    let secure = f.bool_or("cookie_secure", true) && !insecure;
    let expire = f.duration_or("cookie_expire", Duration::from_secs(14 * 3600));
    if expire.is_zero() {
        f.problems.push("cookie_expire", "must be longer than 0");
    }
    let same_site = match f.string("cookie_same_site").map(|s| s.to_ascii_lowercase()) {
        None => SameSite::Lax,
        Some(s) => match s.as_str() {
            "lax" | "" => SameSite::Lax,
            "strict" => SameSite::Strict,
            "none" => SameSite::None,
            other => f
                .ok_or_report(
                    "cookie_same_site",
                    Err(format!("{other:?}: use strict, lax or none")),
                )
                .unwrap_or(SameSite::Lax),
        },
    };
    if same_site == SameSite::None && !secure {
        f.problems.push(
            "cookie_same_site",
            "`none` needs secure cookies, which `insecure_server` turns off",
        );
    }
    Cookie {
        name,
        domain,
        http_only,
        secure,
        expire,
        same_site,
    }
}

fn read_idp(f: &mut Fields<'_>) -> Idp {
    let provider = f
        .string("idp_provider")
        .and_then(|p| match p.to_ascii_lowercase().as_str() {
            "okta" => Some(IdpKind::Okta),
            "oidc" => Some(IdpKind::Oidc),
            other => f.ok_or_report(
                "idp_provider",
                Err(format!("{other:?} is not supported; use `okta` or `oidc`")),
            ),
        });
    let provider_url = read_url(f, "idp_provider_url", false);
    let issuer = provider_url
        .is_some()
        .then(|| f.string("idp_provider_url"))
        .flatten();
    let client_id = f.string("idp_client_id");
    let client_secret = f.secret("idp_client_secret", "idp_client_secret_file");
    let scopes = f.strings("idp_scopes").unwrap_or_else(|| {
        ["openid", "profile", "email", "offline_access"]
            .map(String::from)
            .to_vec()
    });
    let request_params = f.string_map("idp_request_params").unwrap_or_default();
    let token_endpoint_auth_method =
        f.string("idp_token_endpoint_auth_method")
            .and_then(|m| match m.as_str() {
                "client_secret_basic" => Some(TokenAuthMethod::ClientSecretBasic),
                "client_secret_post" => Some(TokenAuthMethod::ClientSecretPost),
                other => f.ok_or_report(
                    "idp_token_endpoint_auth_method",
                    Err(format!(
                        "{other:?}: use client_secret_basic or client_secret_post"
                    )),
                ),
            });
    let directory_url = read_url(f, "idp_directory_url", false);
    let groups_claim = f
        .string("idp_groups_claim")
        .unwrap_or_else(|| "groups".into());
    let service_account = f
        .secret("idp_service_account", "idp_service_account_file")
        .and_then(|raw| {
            let parsed = parse_service_account(raw.expose());
            f.ok_or_report("idp_service_account", parsed)
        });
    let interval = f.duration_or("idp_refresh_directory_interval", Duration::from_secs(600));
    let timeout = f.duration_or("idp_refresh_directory_timeout", Duration::from_secs(60));
    let staleness = f.duration_or("idp_refresh_directory_max_staleness", interval * 2);
    if interval.is_zero() {
        f.problems
            .push("idp_refresh_directory_interval", "must be longer than 0");
    }
    if provider.is_some() {
        for (present, key) in [
            (provider_url.is_some(), "idp_provider_url"),
            (client_id.is_some(), "idp_client_id"),
        ] {
            if !present && !f.has(key) {
                f.problems.push(key, "required when `idp_provider` is set");
            }
        }
    }
    if service_account.is_some() && provider != Some(IdpKind::Okta) {
        f.problems
            .push("idp_service_account", "only used with `idp_provider: okta`");
    }
    Idp {
        provider,
        provider_url,
        issuer,
        client_id,
        client_secret,
        scopes,
        request_params,
        token_endpoint_auth_method,
        groups_claim,
        directory_url,
        service_account,
        refresh_directory_interval: interval,
        refresh_directory_timeout: timeout,
        refresh_directory_max_staleness: staleness,
    }
}

impl Auth {
    /// Secrets this process would generate for itself because they are not configured
    /// (`signing_key` counts only when `shared_secret`, which it derives from, is
    /// missing too). Replicas cannot share sessions or assertions made with those.
    pub fn per_process_secrets(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.shared_secret.is_none() {
            missing.push("shared_secret");
        }
        if self.cookie_secret.is_none() {
            missing.push("cookie_secret");
        }
        if self.signing_key.is_none() && self.shared_secret.is_none() {
            missing.push("signing_key");
        }
        missing
    }
}

/// Extracts the Okta API token from `idp_service_account`: base64 of
/// `{"api_key": "..."}`, or that JSON raw. Errors never echo the value.
pub fn parse_service_account(raw: &str) -> Result<Secret, String> {
    let text = raw.trim();
    let json = if text.starts_with('{') {
        text.as_bytes().to_vec()
    } else {
        decode_base64(text).ok_or_else(|| {
            "expected base64 of {\"api_key\": \"...\"} (or that JSON as is)".to_owned()
        })?
    };
    #[derive(serde::Deserialize)]
    struct Account {
        api_key: Option<String>,
    }
    let account: Account = serde_json::from_slice(&json)
        .map_err(|_| "does not decode to a JSON object like {\"api_key\": \"...\"}".to_owned())?;
    match account.api_key.map(|k| k.trim().to_owned()) {
        Some(k) if !k.is_empty() => Ok(Secret::new(k)),
        _ => Err("the JSON has no non-empty \"api_key\"".into()),
    }
}

fn read_storage(f: &mut Fields<'_>) -> Storage {
    let kind = f
        .string("databroker_storage_type")
        .unwrap_or_else(|| "memory".into());
    let conn = f.secret(
        "databroker_storage_connection_string",
        "databroker_storage_connection_string_file",
    );
    match (kind.as_str(), conn) {
        ("memory", None) => Storage::Memory,
        ("memory", Some(_)) => {
            f.problems.push(
                "databroker_storage_connection_string",
                "only used with `databroker_storage_type: redis`",
            );
            Storage::Memory
        }
        ("redis", Some(c))
            if c.expose().starts_with("redis://") || c.expose().starts_with("rediss://") =>
        {
            Storage::Redis(c)
        }
        ("redis", Some(_)) => {
            f.problems.push(
                "databroker_storage_connection_string",
                "must start with redis:// or rediss://",
            );
            Storage::Memory
        }
        ("redis", None) => {
            f.problems.push(
                "databroker_storage_connection_string",
                "required with `databroker_storage_type: redis`",
            );
            Storage::Memory
        }
        (other, _) => {
            f.problems.push(
                "databroker_storage_type",
                format!("{other:?}: use `memory` or `redis`"),
            );
            Storage::Memory
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_forms() {
        let b64 = "eyJhcGlfa2V5IjoiMDBhYmMifQ=="; // {"api_key":"00abc"}
        assert_eq!(parse_service_account(b64).unwrap().expose(), "00abc");
        assert_eq!(
            parse_service_account(r#"{"api_key": "k"}"#)
                .unwrap()
                .expose(),
            "k"
        );
        let err = parse_service_account(r#"{"api_token": "s3cr3t"}"#).unwrap_err();
        assert!(err.contains("api_key") && !err.contains("s3cr3t"));
        assert!(parse_service_account("%%%").is_err());
    }
}
