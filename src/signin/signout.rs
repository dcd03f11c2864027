//! Signing out: `POST /.pomerium/sign_out` with its session-bound token ends the session
//! everywhere, revokes the refresh token at the provider and sends the browser to the
//! provider's end-session endpoint.

use http::header;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::endpoints::{page, redirect};
use super::{SignIn, SignInError};
use crate::body::ResponseBody;
use crate::error::ProxyError;
use crate::session::Session;

impl SignIn {
    pub(super) async fn sign_out(
        &self,
        req: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let Some(session) = self.sessions.load(req.headers()).await? else {
            // Nothing to end: clear our cookie anyway and say so.
            let mut r = page(StatusCode::OK, "Signed out", "<p>You are signed out.</p>");
            r.headers_mut().append(
                header::SET_COOKIE,
                self.sessions
                    .cookies
                    .clear(self.sessions.cookies.session_name()),
            );
            return Ok(r);
        };
        self.check_csrf(req, &session).await?;
        // A sign-out that cannot be recorded must not look like one.
        self.sessions
            .store
            .delete(&session.id)
            .await
            .map_err(SignInError::Store)?;
        tracing::info!(user = %session.sub, "signed out");
        self.revoke(&session).await;
        let location = self.end_session_url(&session);
        let mut response = match location {
            Some(url) => redirect(&url, Vec::new()),
            None => page(
                StatusCode::OK,
                "Signed out",
                "<p>You are signed out.</p><p><a href=\"/\">Sign in again</a></p>",
            ),
        };
        response.headers_mut().append(
            header::SET_COOKIE,
            self.sessions
                .cookies
                .clear(self.sessions.cookies.session_name()),
        );
        Ok(response)
    }

    /// Revokes the refresh token (or the access token) when the provider advertises a
    /// revocation endpoint. Best effort: a failure is logged, the sign-out proceeds.
    async fn revoke(&self, session: &Session) {
        let Ok(provider) = self.provider() else {
            return;
        };
        let Some(discovered) = provider.discovered() else {
            return;
        };
        let Some(endpoint) = discovered.revocation_endpoint.clone() else {
            return;
        };
        let (token, hint) = match &session.tokens.refresh_token {
            Some(rt) => (rt.expose().to_owned(), "refresh_token"),
            None => (
                session.tokens.access_token.expose().to_owned(),
                "access_token",
            ),
        };
        let mut form = vec![
            ("token", token),
            ("token_type_hint", hint.to_owned()),
            ("client_id", provider.client_id.clone()),
        ];
        let mut request = provider.http.post(endpoint);
        match (discovered.auth_method, provider.client_secret()) {
            (crate::config::auth::TokenAuthMethod::ClientSecretBasic, Some(secret)) => {
                request = request.basic_auth(&provider.client_id, Some(secret));
            }
            (_, Some(secret)) => form.push(("client_secret", secret.to_owned())),
            (_, None) => {}
        }
        match request.form(&form).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(status = %r.status(), "token revocation refused"),
            Err(e) => tracing::warn!(error = %e, "token revocation failed"),
        }
    }

    /// The provider's end-session URL, when it has one.
    fn end_session_url(&self, session: &Session) -> Option<String> {
        let provider = self.provider().ok()?;
        let discovered = provider.discovered()?;
        match discovered.end_session_endpoint.clone() {
            Some(mut url) => {
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("id_token_hint", session.tokens.id_token.expose());
                    q.append_pair("client_id", &provider.client_id);
                    if let Some(after) = &self.settings.signout_redirect {
                        q.append_pair("post_logout_redirect_uri", after.as_str());
                    }
                }
                Some(url.to_string())
            }
            None => self
                .settings
                .signout_redirect
                .as_ref()
                .map(|u| u.to_string()),
        }
    }
}
