//! The authorization-code flow: the redirect to the provider and the callback.
//!
//! Each sign-in gets a one-time `state`, a `nonce` and a PKCE S256 verifier, kept with
//! the return URL and creation time in an AEAD-sealed state cookie (10 minutes, at most
//! eight at once — the oldest is evicted). The callback accepts a code only with the
//! matching state cookie, once; the return URL comes from that cookie, never from a
//! query parameter.

use http::HeaderMap;
use http::header::HeaderValue;
use openidconnect::core::{CoreAuthenticationFlow, CoreIdToken};
use openidconnect::{
    AccessToken, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, SubjectIdentifier, TokenResponse,
};
use serde::{Deserialize, Serialize};

use super::params::Params;
use super::{SignIn, SignInError};
use crate::clock;
use crate::config::secret::Secret;
use crate::oidc::id_token;
use crate::seal::random_token;
use crate::session::{CookieJar, Session, Tokens};

/// How long a sign-in may take, from redirect to callback.
pub(crate) const STATE_TTL: u64 = 600;
/// The most sign-in flows one browser may have open at once.
pub(crate) const MAX_STATE_COOKIES: usize = 8;

/// What the state cookie carries.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FlowState {
    /// The `state` sent to the provider.
    pub state: String,
    /// The `nonce` sent to the provider.
    pub nonce: String,
    /// The PKCE verifier.
    pub verifier: String,
    /// Where to send the user afterwards.
    pub return_url: String,
    /// Our `redirect_uri` for this flow.
    pub redirect_uri: String,
    /// Unix time the flow began.
    pub created_at: u64,
    /// The browser binding of the route host that sent the user here (hand-off only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
}

/// A completed callback.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The new session (stored).
    pub session: Session,
    /// Where the user goes next.
    pub return_url: String,
    /// The browser binding to hand the session to (hand-off only).
    pub binding: Option<String>,
    /// `Set-Cookie` clearing the state cookie.
    pub clear_state: HeaderValue,
}

/// The start of a sign-in: where to send the browser and the cookies to set.
#[derive(Debug)]
pub struct Begin {
    /// The provider's authorize URL.
    pub location: String,
    /// `Set-Cookie` values: the new state cookie and any evictions.
    pub cookies: Vec<HeaderValue>,
}

impl SignIn {
    /// Starts a sign-in that will come back to `redirect_uri` and then `return_url`.
    pub fn begin(
        &self,
        redirect_uri: &str,
        return_url: &str,
        binding: Option<&str>,
        jar: &CookieJar<'_>,
    ) -> Result<Begin, SignInError> {
        let provider = self.provider()?;
        let discovered = provider
            .discovered()
            .ok_or(SignInError::ProviderUnavailable)?;
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|_| SignInError::Internal("redirect_uri"))?;
        let client = provider.client(&discovered).set_redirect_uri(redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = random_token(32);
        let nonce = random_token(32);
        let (s, n) = (state.clone(), nonce.clone());
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(s),
                move || Nonce::new(n),
            )
            .set_pkce_challenge(challenge);
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        for (k, v) in &self.settings.request_params {
            request = request.add_extra_param(k.clone(), v.clone());
        }
        let (url, _, _) = request.url();

        let now = clock::now();
        let flow = FlowState {
            state: state.clone(),
            nonce,
            verifier: verifier.secret().clone(),
            return_url: return_url.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            created_at: now,
            binding: binding.map(str::to_owned),
        };
        let name = self.sessions.cookies.state_name(&state);
        let sealed = self
            .sessions
            .cookies
            .seal(&name, &serde_json::to_vec(&flow).unwrap_or_default());
        let mut cookies = self.evict_old_states(jar);
        cookies.push(
            self.sessions
                .cookies
                .state_cookie(&name, &sealed, STATE_TTL),
        );
        Ok(Begin {
            location: url.to_string(),
            cookies,
        })
    }

    /// Deletes the oldest state cookies so that, with the new one, at most eight remain;
    /// unreadable or expired ones always go.
    fn evict_old_states(&self, jar: &CookieJar<'_>) -> Vec<HeaderValue> {
        let prefix = self.sessions.cookies.state_prefix();
        let now = clock::now();
        let mut live: Vec<(u64, &str)> = Vec::new();
        let mut out = Vec::new();
        for (name, value) in jar.with_prefix(&prefix) {
            let created = self
                .sessions
                .cookies
                .open(name, value)
                .and_then(|b| serde_json::from_slice::<FlowState>(&b).ok())
                .map(|f| f.created_at)
                .filter(|t| now.saturating_sub(*t) < STATE_TTL);
            match created {
                Some(t) => live.push((t, name)),
                None => out.push(self.sessions.cookies.clear(name)),
            }
        }
        live.sort_unstable();
        let excess = (live.len() + 1).saturating_sub(MAX_STATE_COOKIES);
        out.extend(
            live.iter()
                .take(excess)
                .map(|(_, name)| self.sessions.cookies.clear(name)),
        );
        out
    }

    /// Handles `/oauth2/callback`: checks state, exchanges the code, validates the ID
    /// token and userinfo, stores a new session.
    pub(crate) async fn finish(
        &self,
        query: &str,
        headers: &HeaderMap,
    ) -> Result<Finished, SignInError> {
        let params = Params::parse(query).map_err(|e| SignInError::BadCallback(e.reason()))?;
        let state = params
            .get("state")
            .ok_or(SignInError::BadCallback("missing state"))?;
        let jar = CookieJar::from_headers(headers);
        let name = self.sessions.cookies.state_name(state);
        let clear = self.sessions.cookies.clear(&name);
        let flow = jar
            .unique(&name)
            .and_then(|v| self.sessions.cookies.open(&name, v))
            .and_then(|b| serde_json::from_slice::<FlowState>(&b).ok())
            .ok_or(SignInError::StateMismatch)?;
        // Compared in constant time (openidconnect hashes both sides).
        if CsrfToken::new(flow.state.clone()) != CsrfToken::new(state.to_owned()) {
            return Err(SignInError::StateMismatch);
        }
        let now = clock::now();
        if now.saturating_sub(flow.created_at) >= STATE_TTL {
            return Err(SignInError::StateExpired);
        }
        if !self
            .use_once(&flow.state, flow.created_at + STATE_TTL)
            .await?
        {
            return Err(SignInError::StateReplayed);
        }
        if let Some(error) = params.get("error") {
            return Err(SignInError::Provider {
                error: error.to_owned(),
                description: params.get("error_description").map(str::to_owned),
            });
        }
        let code = params
            .get("code")
            .ok_or(SignInError::BadCallback("missing code"))?;
        let provider = self.provider()?;
        let discovered = provider
            .discovered()
            .ok_or(SignInError::ProviderUnavailable)?;
        if let Some(iss) = params.get("iss") {
            // RFC 9207: a response from another issuer is a mix-up attack.
            if iss != provider.issuer {
                return Err(SignInError::BadCallback("response from another issuer"));
            }
        }
        let redirect = RedirectUrl::new(flow.redirect_uri.clone())
            .map_err(|_| SignInError::Internal("redirect_uri"))?;
        let client = provider.client(&discovered).set_redirect_uri(redirect);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| SignInError::Internal("token endpoint"))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
            .request_async(&provider.http)
            .await
            .map_err(|e| match e {
                // The provider answered `invalid_grant` (a code that is unknown, used,
                // or fails PKCE): the request was wrong, not the provider. Any other
                // error (`invalid_client`: our configuration) stays a provider failure.
                openidconnect::RequestTokenError::ServerResponse(r)
                    if r.error().as_ref() == "invalid_grant" =>
                {
                    SignInError::CodeRefused(r.error().to_string())
                }
                e => SignInError::TokenExchange(Box::new(e)),
            })?;
        let id_token = response
            .id_token()
            .ok_or(SignInError::Incomplete("ID token"))?;
        let nonce = Nonce::new(flow.nonce.clone());
        let claims = provider.verify_id_token(id_token, Some(&nonce)).await?;
        let mut session = self.new_session(
            claims,
            id_token,
            response.access_token(),
            response.expires_in(),
            response.refresh_token().map(|r| r.secret().clone()),
        )?;
        self.merge_userinfo(&mut session).await?;
        self.sessions.add_directory_groups(&mut session).await;
        self.sessions.store.put(session.clone()).await?;
        Ok(Finished {
            session,
            return_url: flow.return_url,
            binding: flow.binding,
            clear_state: clear,
        })
    }

    fn new_session(
        &self,
        claims: serde_json::Map<String, serde_json::Value>,
        id_token: &CoreIdToken,
        access: &AccessToken,
        expires_in: Option<std::time::Duration>,
        refresh: Option<String>,
    ) -> Result<Session, SignInError> {
        let now = clock::now();
        let sub = claims
            .get("sub")
            .and_then(|v| v.as_str())
            .ok_or(SignInError::Incomplete("sub"))?
            .to_owned();
        let issuer = claims
            .get("iss")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let audience = id_token::string_list(&claims, "aud");
        let mut session = Session {
            id: random_token(32),
            sub,
            email: None,
            name: None,
            claims: serde_json::Map::new(),
            groups: Vec::new(),
            claim_groups: Vec::new(),
            groups_unverified: false,
            directory_checked_at: 0,
            tokens: Tokens {
                access_token: Secret::new(access.secret().clone()),
                access_expires_at: expires_in.map(|d| now + d.as_secs()),
                access_issued_at: now,
                refresh_token: refresh.map(Secret::new),
                id_token: Secret::new(id_token.to_string()),
            },
            issuer,
            audience,
            issued_at: now,
            expires_at: now + self.settings.cookie_expire,
        };
        self.sessions.apply_claims(&mut session, claims);
        Ok(session)
    }

    /// Calls userinfo when the provider has it; its `sub` must be the session's.
    async fn merge_userinfo(&self, session: &mut Session) -> Result<(), SignInError> {
        let provider = self.provider()?;
        let discovered = provider
            .discovered()
            .ok_or(SignInError::ProviderUnavailable)?;
        let client = provider.client(&discovered);
        let Ok(request) = client.user_info(
            AccessToken::new(session.tokens.access_token.expose().to_owned()),
            Some(SubjectIdentifier::new(session.sub.clone())),
        ) else {
            return Ok(()); // no userinfo endpoint
        };
        let claims: openidconnect::core::CoreUserInfoClaims = request
            .request_async(&provider.http)
            .await
            .map_err(|e| SignInError::Userinfo(Box::new(e)))?;
        let value =
            serde_json::to_value(&claims).map_err(|_| SignInError::Internal("userinfo claims"))?;
        if let serde_json::Value::Object(map) = value {
            self.sessions.apply_claims(session, map);
        }
        Ok(())
    }
}
