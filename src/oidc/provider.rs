//! The identity provider as discovered: metadata, keys and a ready OAuth client.
//!
//! Discovery reads `<idp_provider_url>/.well-known/openid-configuration`; the issuer it
//! advertises must equal the configured one byte for byte (scheme, host, port, trailing
//! slash). Keys come from `jwks_uri` at discovery and again — at most once a minute —
//! when a token names a key id we do not know. All IdP calls use one HTTP client that
//! never follows redirects.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use openidconnect::core::{CoreClient, CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::{
    AuthType, ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, JsonWebKeySet,
};
use tokio::time::Instant;
use url::Url;

use crate::config::auth::{Idp, TokenAuthMethod};

/// The OAuth client type once built from discovery.
pub(crate) type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why the provider could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Discovery or JWKS could not be fetched.
    #[error("cannot reach the identity provider: {0}")]
    Unreachable(String),
    /// The discovery document is not what we need.
    #[error("the identity provider's discovery document is unusable: {0}")]
    BadDiscovery(String),
}

/// What discovery found.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The provider metadata (with keys).
    pub metadata: CoreProviderMetadata,
    /// How we authenticate at the token endpoint.
    pub auth_method: TokenAuthMethod,
    /// `end_session_endpoint`, when advertised.
    pub end_session_endpoint: Option<Url>,
    /// `revocation_endpoint`, when advertised.
    pub revocation_endpoint: Option<Url>,
}

/// The provider: discovery state plus the HTTP client for IdP calls.
#[derive(Debug)]
pub struct Provider {
    /// The issuer exactly as configured.
    pub issuer: String,
    /// `idp_client_id`.
    pub client_id: String,
    /// `idp_client_secret`.
    client_secret: Option<String>,
    configured_method: Option<TokenAuthMethod>,
    /// HTTP client for every IdP call: no redirects, bounded time.
    pub http: reqwest::Client,
    state: RwLock<Option<Arc<Discovered>>>,
    last_jwks_fetch: Mutex<Option<Instant>>,
}

impl Provider {
    /// A provider not yet discovered.
    pub fn new(
        issuer: String,
        client_id: String,
        client_secret: Option<String>,
        method: Option<TokenAuthMethod>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            issuer,
            client_id,
            client_secret,
            configured_method: method,
            http,
            state: RwLock::new(None),
            last_jwks_fetch: Mutex::new(None),
        }
    }

    /// The discovered provider, if discovery has succeeded.
    pub fn discovered(&self) -> Option<Arc<Discovered>> {
        self.state.read().ok().and_then(|s| s.clone())
    }

    /// Runs discovery once and stores the result.
    pub async fn discover(&self) -> Result<Arc<Discovered>, ProviderError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let doc: serde_json::Value = self
            .http
            .get(&url)
            .header("accept", "application/json")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| ProviderError::Unreachable(format!("{url}: {e}")))?
            .json()
            .await
            .map_err(|e| ProviderError::BadDiscovery(format!("not JSON: {e}")))?;
        let advertised = doc
            .get("issuer")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if advertised != self.issuer {
            return Err(ProviderError::BadDiscovery(format!(
                "it advertises issuer {advertised:?}, but idp_provider_url is {:?}; they must be identical \
                 (scheme, host, port and trailing slash)",
                self.issuer
            )));
        }
        let end_session_endpoint = url_field(&doc, "end_session_endpoint");
        let revocation_endpoint = url_field(&doc, "revocation_endpoint");
        let methods: Vec<String> = doc
            .get("token_endpoint_auth_methods_supported")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let metadata: CoreProviderMetadata =
            serde_json::from_value(doc).map_err(|e| ProviderError::BadDiscovery(e.to_string()))?;
        let jwks = self.fetch_jwks(&metadata).await?;
        let metadata = metadata.set_jwks(jwks);
        let auth_method = self
            .configured_method
            .unwrap_or_else(|| default_method(&methods));
        let discovered = Arc::new(Discovered {
            metadata,
            auth_method,
            end_session_endpoint,
            revocation_endpoint,
        });
        if let Ok(mut s) = self.state.write() {
            *s = Some(discovered.clone());
        }
        Ok(discovered)
    }

    async fn fetch_jwks(
        &self,
        metadata: &CoreProviderMetadata,
    ) -> Result<CoreJsonWebKeySet, ProviderError> {
        JsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| ProviderError::Unreachable(format!("JWKS: {e}")))
    }

    /// Refetches the keys after a token named an unknown key id — at most once a minute,
    /// so a flood of made-up key ids cannot hammer the provider. True when new keys were
    /// installed.
    pub async fn refresh_keys(&self) -> bool {
        // Only refetches triggered by unknown key ids count against the limit.
        let due = match self.last_jwks_fetch.lock() {
            Ok(mut last) if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) => {
                *last = Some(Instant::now());
                true
            }
            _ => false,
        };
        let Some(current) = self.discovered() else {
            return false;
        };
        if !due {
            return false;
        }
        match self.fetch_jwks(&current.metadata).await {
            Ok(jwks) => {
                let mut next = (*current).clone();
                next.metadata = next.metadata.set_jwks(jwks);
                if let Ok(mut s) = self.state.write() {
                    *s = Some(Arc::new(next));
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "refetching the provider's keys failed");
                false
            }
        }
    }

    /// `idp_client_secret`, for calls openidconnect does not make (revocation).
    pub fn client_secret(&self) -> Option<&str> {
        self.client_secret.as_deref()
    }

    /// An OAuth client for the current discovery state.
    pub fn client(&self, discovered: &Discovered) -> Client {
        let client = CoreClient::from_provider_metadata(
            discovered.metadata.clone(),
            ClientId::new(self.client_id.clone()),
            self.client_secret.clone().map(ClientSecret::new),
        );
        client.set_auth_type(match discovered.auth_method {
            TokenAuthMethod::ClientSecretBasic => AuthType::BasicAuth,
            TokenAuthMethod::ClientSecretPost => AuthType::RequestBody,
        })
    }

    /// The provider of the configured `idp_*` settings; `None` when sign-in is not
    /// configured (no provider kind, issuer or client id).
    pub fn from_config(idp: &Idp) -> Option<Arc<Self>> {
        match (&idp.issuer, &idp.client_id) {
            (Some(issuer), Some(client_id)) if idp.provider.is_some() => Some(Arc::new(Self::new(
                issuer.clone(),
                client_id.clone(),
                idp.client_secret.as_ref().map(|s| s.expose().to_owned()),
                idp.token_endpoint_auth_method,
            ))),
            _ => None,
        }
    }

    /// Discovers the provider: one attempt now (at most 10 s), so a reachable provider
    /// is ready before the first request; if it fails, retries continue in the
    /// background while public routes are served.
    pub async fn start_discovery(self: &Arc<Self>) {
        match tokio::time::timeout(Duration::from_secs(10), self.discover()).await {
            Ok(Ok(_)) => tracing::info!(issuer = %self.issuer, "identity provider discovered"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "identity provider discovery failed; retrying in the background");
                tokio::spawn(self.clone().discover_until_ready());
            }
            Err(_) => {
                tracing::warn!("identity provider discovery timed out; retrying in the background");
                tokio::spawn(self.clone().discover_until_ready());
            }
        }
    }

    /// Keeps trying discovery with exponential backoff (1 s … 60 s) until it succeeds.
    pub async fn discover_until_ready(self: Arc<Self>) {
        let mut delay = Duration::from_secs(1);
        loop {
            match self.discover().await {
                Ok(_) => {
                    tracing::info!(issuer = %self.issuer, "identity provider discovered");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "identity provider discovery failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}

fn url_field(doc: &serde_json::Value, key: &str) -> Option<Url> {
    doc.get(key)
        .and_then(|v| v.as_str())
        .and_then(|s| Url::parse(s).ok())
}

/// The first of basic/post the provider lists; basic when it lists neither.
fn default_method(methods: &[String]) -> TokenAuthMethod {
    methods
        .iter()
        .find_map(|m| match m.as_str() {
            "client_secret_basic" => Some(TokenAuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(TokenAuthMethod::ClientSecretPost),
            _ => None,
        })
        .unwrap_or(TokenAuthMethod::ClientSecretBasic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_method_defaults_to_the_first_supported() {
        let m = |v: &[&str]| default_method(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            m(&[
                "private_key_jwt",
                "client_secret_post",
                "client_secret_basic"
            ]),
            TokenAuthMethod::ClientSecretPost
        );
        assert_eq!(
            m(&["client_secret_basic"]),
            TokenAuthMethod::ClientSecretBasic
        );
        assert_eq!(m(&[]), TokenAuthMethod::ClientSecretBasic);
    }
}
