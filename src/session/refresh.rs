//! Stage 3, token refresh: when a session's access token is close to expiry
//! (less than min(60 s, a quarter of its lifetime) left) it is refreshed — once per
//! session however many requests arrive at that moment. Rotated refresh tokens are
//! kept; a refreshed ID token must keep `iss`, `sub` and `aud`. `invalid_grant` ends the
//! session; transient errors back off and never sign the user out while the access
//! token is still valid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openidconnect::{OAuth2TokenResponse, RefreshToken, RequestTokenError, TokenResponse};

use super::{Session, Sessions};
use crate::clock;
use crate::config::secret::Secret;

/// How long a request waits for another replica's refresh of the same session.
const AWAIT_REFRESH: Duration = Duration::from_secs(10);

/// Per-session single-flight locks and transient-failure backoff.
#[derive(Debug, Default)]
pub(super) struct Coordinator {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    backoff: Mutex<HashMap<String, (u64, u32)>>,
}

impl Coordinator {
    fn lock_for(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
        let mut locks = self.locks.lock().ok()?;
        Some(locks.entry(id.to_owned()).or_default().clone())
    }

    fn release(&self, id: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        if let Ok(mut locks) = self.locks.lock() {
            // Ours plus the map's: nobody else is waiting.
            if Arc::strong_count(&lock) <= 2 {
                locks.remove(id);
            }
        }
    }

    fn retry_allowed(&self, id: &str, now: u64) -> bool {
        self.backoff
            .lock()
            .ok()
            .is_none_or(|b| b.get(id).is_none_or(|(at, _)| now >= *at))
    }

    fn failed(&self, id: &str, now: u64) {
        if let Ok(mut b) = self.backoff.lock() {
            let entry = b.entry(id.to_owned()).or_insert((0, 0));
            entry.1 = entry.1.saturating_add(1);
            entry.0 = now + (1u64 << entry.1.min(6)).min(60);
        }
    }

    fn succeeded(&self, id: &str) {
        if let Ok(mut b) = self.backoff.lock() {
            b.remove(id);
        }
    }
}

/// What refreshing decided.
enum Outcome {
    Fresh(Arc<Session>),
    Ended,
    Transient,
}

impl Sessions {
    /// One refresh per session: per process through [`Coordinator`], across replicas
    /// through the store's refresh lock. A request that finds another replica
    /// refreshing waits (bounded) for its result.
    pub(super) async fn refresh_single_flight(
        &self,
        session: Arc<Session>,
    ) -> Option<Arc<Session>> {
        let id = session.id.clone();
        let lock = self.refresh.lock_for(&id)?;
        let guard = lock.lock().await;
        // Someone else may have refreshed while we waited: read again.
        let result = match self.store.get_fresh(&id).await {
            Err(_) => usable(session),
            Ok(None) => None,
            Ok(Some(s)) if !s.refresh_due(clock::now()) => Some(s),
            Ok(Some(s)) if !self.refresh.retry_allowed(&id, clock::now()) => usable(s),
            Ok(Some(s)) => match self.store.lock_refresh(&id).await {
                Ok(Some(held)) => {
                    let result = self.refresh_locked(&id, s).await;
                    let _ = self.store.unlock_refresh(held).await;
                    result
                }
                Ok(None) => self.await_other_refresh(&id, s).await,
                Err(_) => usable(s),
            },
        };
        drop(guard);
        self.refresh.release(&id, lock);
        result
    }

    /// Refreshes under the cross-replica lock (after one more read: the previous holder
    /// may just have finished).
    async fn refresh_locked(&self, id: &str, seen: Arc<Session>) -> Option<Arc<Session>> {
        let s = match self.store.get_fresh(id).await {
            Ok(Some(s)) if !s.refresh_due(clock::now()) => return Some(s),
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(_) => return usable(seen),
        };
        match self.refresh_once(&s).await {
            Outcome::Fresh(next) => {
                self.refresh.succeeded(id);
                Some(next)
            }
            Outcome::Ended => {
                let _ = self.store.delete(id).await;
                None
            }
            Outcome::Transient => {
                self.refresh.failed(id, clock::now());
                usable(s)
            }
        }
    }

    /// Another replica holds the refresh lock: wait for its result (at most
    /// [`AWAIT_REFRESH`]), then fall back to the current tokens while they are valid.
    async fn await_other_refresh(&self, id: &str, seen: Arc<Session>) -> Option<Arc<Session>> {
        let deadline = tokio::time::Instant::now() + AWAIT_REFRESH;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            match self.store.get_fresh(id).await {
                Ok(Some(s)) if !s.refresh_due(clock::now()) => return Some(s),
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(_) => break,
            }
        }
        usable(seen)
    }

    async fn refresh_once(&self, session: &Session) -> Outcome {
        let Some(provider) = &self.provider else {
            return Outcome::Transient;
        };
        let Some(discovered) = provider.discovered() else {
            return Outcome::Transient;
        };
        let Some(refresh_token) = &session.tokens.refresh_token else {
            return Outcome::Ended;
        };
        let client = provider.client(&discovered);
        let rt = RefreshToken::new(refresh_token.expose().to_owned());
        let Ok(request) = client.exchange_refresh_token(&rt) else {
            return Outcome::Transient;
        };
        let response = match request.request_async(&provider.http).await {
            Ok(r) => r,
            Err(RequestTokenError::ServerResponse(e)) if e.error().as_ref() == "invalid_grant" => {
                tracing::info!(session_sub = %session.sub, "refresh token rejected (invalid_grant); session ended");
                return Outcome::Ended;
            }
            Err(e) => {
                tracing::warn!(error = %crate::telemetry::error_chain(&e), "token refresh failed; will retry");
                return Outcome::Transient;
            }
        };
        let now = clock::now();
        let mut next = session.clone();
        next.tokens.access_token = Secret::new(response.access_token().secret().clone());
        next.tokens.access_issued_at = now;
        next.tokens.access_expires_at = response.expires_in().map(|d| now + d.as_secs());
        if let Some(rotated) = response.refresh_token() {
            next.tokens.refresh_token = Some(Secret::new(rotated.secret().clone()));
        }
        if let Some(id_token) = response.id_token() {
            let claims = match provider.verify_id_token(id_token, None).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "refreshed ID token rejected; session ended");
                    return Outcome::Ended;
                }
            };
            let same = claims.get("iss").and_then(|v| v.as_str()) == Some(session.issuer.as_str())
                && claims.get("sub").and_then(|v| v.as_str()) == Some(session.sub.as_str())
                && crate::oidc::id_token::string_list(&claims, "aud") == session.audience;
            if !same {
                tracing::warn!(
                    "refreshed ID token names another issuer, subject or audience; session ended"
                );
                return Outcome::Ended;
            }
            next.tokens.id_token = Secret::new(id_token.to_string());
            self.apply_claims(&mut next, claims);
        }
        if self.store.put(next.clone()).await.is_err() {
            return Outcome::Transient;
        }
        Outcome::Fresh(Arc::new(next))
    }
}

/// A session whose refresh failed transiently: usable while its access token is.
fn usable(s: Arc<Session>) -> Option<Arc<Session>> {
    (!s.access_expired(clock::now())).then_some(s)
}
