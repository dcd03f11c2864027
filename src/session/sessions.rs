//! Stage 3, **load_session**: [`Sessions`] owns everything a request's session comes
//! from — the cookie codec, the store, the refresh coordinator (through the identity
//! provider) and the merge of the directory's groups — so the pipeline asks one object
//! for the session and never reaches into its parts.

use std::sync::Arc;

use http::HeaderMap;

use super::refresh::Coordinator;
use super::{CookieJar, Session, SessionStore, StoreError, cookies::Cookies};
use crate::clock;
use crate::config::Config;
use crate::directory::{GroupCache, Membership};
use crate::error::ProxyError;
use crate::oidc::Provider;
use crate::routes::Route;
use crate::seal::random_32;

/// Stage 3: the session of a request for `route` — none when the route's rules cannot
/// depend on a user (then nothing is read), else the cookie's session, refreshed if
/// due. A missing, foreign or expired session is `None`; a store that cannot be
/// reached is an error, never a silent sign-out.
pub async fn load_session(
    sessions: &Sessions,
    route: &Route,
    headers: &HeaderMap,
) -> Result<Option<Arc<Session>>, ProxyError> {
    if !route.policy.needs_user() {
        return Ok(None);
    }
    // Boxed: the load (with a possible refresh) is a large future.
    Ok(Box::pin(sessions.load(headers)).await?)
}

/// The sessions of signed-in users.
#[derive(Debug)]
pub struct Sessions {
    /// Cookie sealing and attributes.
    pub(crate) cookies: Cookies,
    /// Where sessions live.
    pub(crate) store: Arc<dyn SessionStore>,
    /// The identity provider (refreshes tokens), when sign-in is configured.
    pub(crate) provider: Option<Arc<Provider>>,
    /// The directory's group memberships (Okta with `idp_service_account`).
    pub(crate) groups: Option<Arc<GroupCache>>,
    /// `idp_groups_claim`.
    groups_claim: String,
    pub(super) refresh: Coordinator,
}

impl Sessions {
    /// Sessions kept in `store`, refreshed through `provider`, with groups from
    /// `groups`. A `cookie_secret` that is not configured is generated for this process
    /// (with a warning at start).
    pub fn new(
        config: &Config,
        store: Arc<dyn SessionStore>,
        provider: Option<Arc<Provider>>,
        groups: Option<Arc<GroupCache>>,
    ) -> Self {
        let auth = &config.auth;
        let cookie_secret = auth.cookie_secret.as_ref().map_or_else(random_32, |k| k.0);
        let mut cookie = auth.cookie.clone();
        cookie.secure = cookie.secure && !config.server.insecure;
        Self {
            cookies: Cookies::new(cookie, &cookie_secret),
            store,
            provider,
            groups,
            groups_claim: auth.idp.groups_claim.clone(),
            refresh: Coordinator::default(),
        }
    }

    /// Connects the store (Redis: connection and announcements). A store that is down
    /// is logged and retried on use; the proxy starts anyway.
    pub async fn start(&self) {
        let _ = self.store.start().await;
    }

    /// The store (for tools and benchmarks that seed sessions).
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The cookie codec.
    pub fn cookies(&self) -> &Cookies {
        &self.cookies
    }

    /// Whether the store answers now (`/readyz`).
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.store.check().await
    }

    /// Whether a new session could be stored now: checked before a user is sent to
    /// the identity provider, so an outage is told before, not after, the sign-in.
    pub async fn can_store(&self) -> Result<(), StoreError> {
        if self.store.available() {
            return Ok(());
        }
        self.store.check().await
    }

    /// The request's session: from the cookie, through the store, refreshed if due.
    /// A missing, foreign or expired session is `Ok(None)`; a store that cannot be
    /// reached (and has no usable local copy) is an error, never a silent sign-out.
    pub async fn load(&self, headers: &HeaderMap) -> Result<Option<Arc<Session>>, StoreError> {
        let jar = CookieJar::from_headers(headers);
        let Some(session) = self
            .one_live_session(&self.cookies.session_ids(&jar))
            .await?
        else {
            return Ok(None);
        };
        let now = clock::now();
        let session = if !session.refresh_due(now) || self.provider.is_none() {
            if session.access_expired(now) && session.tokens.refresh_token.is_none() {
                return Ok(None);
            }
            session
        } else {
            match self.refresh_single_flight(session).await {
                Some(s) => s,
                None => return Ok(None),
            }
        };
        Ok(Some(self.with_current_groups(session).await))
    }

    /// The one live session among the cookies' session ids. A browser can hold two
    /// session cookies (one host-only, one for `cookie_domain`, or a stale copy): when
    /// exactly one of them is live it is the session; two different live sessions are
    /// ambiguous (a tossed cookie) and mean no session — never one picked of the two.
    async fn one_live_session(&self, ids: &[String]) -> Result<Option<Arc<Session>>, StoreError> {
        let mut found: Option<Arc<Session>> = None;
        for id in ids {
            match self.store.get(id).await {
                Ok(Some(s)) if !s.is_expired(clock::now()) => {
                    if found.is_some() {
                        tracing::info!("two different live session cookies: treated as none");
                        return Ok(None);
                    }
                    found = Some(s);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "session store unavailable");
                    return Err(e);
                }
            }
        }
        Ok(found)
    }

    /// Applies what the directory knows now (no network I/O: refreshes run in the
    /// background). Changes are written back so other requests (and replicas) see
    /// them. A replica that has not looked the user up yet trusts the groups another
    /// one confirmed, within `max_staleness` of that confirmation.
    async fn with_current_groups(&self, session: Arc<Session>) -> Arc<Session> {
        let Some(cache) = &self.groups else {
            return session;
        };
        let updated = match cache.current(&session.sub) {
            Membership::Known(g) | Membership::Stale(g) => {
                let checked = cache.fetched_at(&session.sub).unwrap_or(0);
                if session.has_directory_groups(&g)
                    && !session.groups_unverified
                    && session.directory_checked_at >= checked
                {
                    return session;
                }
                let mut next = (*session).clone();
                next.set_directory_groups(&g);
                next.groups_unverified = false;
                next.directory_checked_at = checked;
                next
            }
            Membership::Unavailable => {
                let confirmed_until = session
                    .directory_checked_at
                    .saturating_add(cache.max_staleness());
                if session.groups_unverified || clock::now() < confirmed_until {
                    return session;
                }
                let mut next = (*session).clone();
                next.groups_unverified = true;
                next
            }
        };
        let _ = self.store.put(updated.clone()).await;
        Arc::new(updated)
    }

    /// Re-reads the user's groups from the directory now (the user page's button).
    pub async fn refresh_groups(
        &self,
        session: &Session,
    ) -> Result<(), crate::directory::DirectoryError> {
        let Some(cache) = &self.groups else {
            return Ok(());
        };
        let groups = cache.refresh_now(&session.sub).await?;
        let mut next = session.clone();
        next.set_directory_groups(&groups);
        next.groups_unverified = false;
        next.directory_checked_at = clock::now();
        let _ = self.store.put(next).await;
        Ok(())
    }

    /// Merges claims into the session and derives email, name and groups from them.
    pub fn apply_claims(
        &self,
        session: &mut Session,
        claims: serde_json::Map<String, serde_json::Value>,
    ) {
        for (k, v) in claims {
            session.claims.insert(k, v);
        }
        let text = |k: &str| {
            session
                .claims
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        session.email = text("email");
        // `email_verified: false`: the provider does not vouch for the address, so it
        // is not the user's email for `email`/`domain` rules (nor `allowed_users`,
        // `allowed_domains`), nor for the assertion.
        let unverified = match session.claims.get("email_verified") {
            Some(serde_json::Value::Bool(b)) => !b,
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("false"),
            _ => false,
        };
        if unverified && session.email.take().is_some() {
            tracing::info!(user = %session.sub, "the provider marks the email as not verified: it is not used");
        }
        let has_email_claim = session.claims.contains_key("email");
        session.name = text("name");
        let mut groups = crate::oidc::id_token::string_list(&session.claims, &self.groups_claim);
        groups.sort();
        groups.dedup();
        if !has_email_claim && session.sub.matches('@').count() == 1 {
            // Providers that send only `openid` often put the email in `sub`.
            session.email = Some(session.sub.clone());
        }
        let directory: Vec<String> = session
            .groups
            .iter()
            .filter(|g| !session.claim_groups.contains(g))
            .cloned()
            .collect();
        session.claim_groups = groups;
        session.set_directory_groups(&directory);
    }

    /// Adds the directory's groups (Okta) at sign-in. A failure does not stop the
    /// sign-in: the session is marked unverified and group-gated routes fail closed.
    pub async fn add_directory_groups(&self, session: &mut Session) {
        let Some(cache) = &self.groups else { return };
        match cache.load(&session.sub).await {
            Ok(groups) => {
                session.set_directory_groups(&groups);
                session.groups_unverified = false;
                session.directory_checked_at = crate::clock::now();
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the user's groups from the directory");
                session.groups_unverified = true;
            }
        }
    }
}
