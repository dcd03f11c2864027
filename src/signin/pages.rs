//! The user's own pages: `/.pomerium/` (who is signed in, "Refresh my groups", sign
//! out), `/.pomerium/user` (the same as JSON) and the sign-out confirmation, with the
//! sealed, session-bound token their forms carry.

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use super::SignIn;
use super::endpoints::page;
use crate::body::ResponseBody;
use crate::clock;
use crate::error::ProxyError;
use crate::respond;
use crate::session::Session;

/// How often one session may re-read its groups from the directory.
pub(crate) const GROUPS_REFRESH_EVERY: u64 = 10;

#[derive(Serialize, Deserialize)]
struct Csrf {
    s: String,
    e: u64,
}

impl SignIn {
    fn csrf_token(&self, session: &Session) -> String {
        let csrf = Csrf {
            s: session.id.clone(),
            e: clock::now() + 3600,
        };
        self.sessions
            .cookies
            .seal("csrf", &serde_json::to_vec(&csrf).unwrap_or_default())
    }

    pub(super) fn sign_out_confirm(&self, session: Option<&Session>) -> Response<ResponseBody> {
        match session {
            None => page(
                StatusCode::OK,
                "Signed out",
                "<p>You are not signed in.</p><p><a href=\"/\">Sign in</a></p>",
            ),
            Some(s) => page(
                StatusCode::OK,
                "Sign out?",
                &format!(
                    "<p>You are signed in as <strong>{}</strong>.</p>{}",
                    respond::escape(s.email.as_deref().unwrap_or(&s.sub)),
                    sign_out_form(&self.csrf_token(s))
                ),
            ),
        }
    }

    /// Reads the form body and checks its `csrf` token against `session`.
    pub(super) async fn check_csrf(
        &self,
        req: Request<Incoming>,
        session: &Session,
    ) -> Result<(), ProxyError> {
        let body = Limited::new(req.into_body(), 4096)
            .collect()
            .await
            .map_err(|_| ProxyError::BadForm)?
            .to_bytes();
        let token = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        let valid = token
            .and_then(|t| self.sessions.cookies.open("csrf", &t))
            .and_then(|b| serde_json::from_slice::<Csrf>(&b).ok())
            .is_some_and(|c| c.s == session.id && c.e >= clock::now());
        if valid {
            Ok(())
        } else {
            Err(ProxyError::Forbidden(None))
        }
    }

    pub(super) fn user_page(&self, s: &Session) -> Response<ResponseBody> {
        let groups = if s.groups.is_empty() {
            "<em>none</em>".to_owned()
        } else {
            s.groups
                .iter()
                .map(|g| format!("<li>{}</li>", respond::escape(g)))
                .collect::<Vec<_>>()
                .join("")
        };
        let body = format!(
            "<dl><dt>Name</dt><dd>{name}</dd><dt>Email</dt><dd>{email}</dd><dt>User</dt><dd><code>{sub}</code></dd>\
<dt>Groups</dt><dd><ul>{groups}</ul>{unverified}{refresh}</dd><dt>Session ends</dt><dd>in {mins} minutes</dd></dl>{form}",
            name = respond::escape(s.name.as_deref().unwrap_or("—")),
            email = respond::escape(s.email.as_deref().unwrap_or("—")),
            sub = respond::escape(&s.sub),
            mins = s.expires_at.saturating_sub(clock::now()) / 60,
            form = sign_out_form(&self.csrf_token(s)),
            unverified = if s.groups_unverified {
                "<p><em>The directory could not confirm these groups.</em></p>"
            } else {
                ""
            },
            refresh = if self.sessions.groups.is_some() {
                format!(
                    "<form method=\"post\" action=\"/.pomerium/refresh_groups\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button type=\"submit\">Refresh my groups</button></form>",
                    respond::escape(&self.csrf_token(s))
                )
            } else {
                String::new()
            },
        );
        page(StatusCode::OK, "Signed in", &body)
    }
}

/// The answer to a second "refresh my groups" within [`GROUPS_REFRESH_EVERY`].
pub(super) fn groups_refreshed_recently() -> Response<ResponseBody> {
    let mut r = page(
        StatusCode::TOO_MANY_REQUESTS,
        "Groups refreshed moments ago",
        &format!(
            "<p>Your groups were read from the directory less than {GROUPS_REFRESH_EVERY} seconds ago, \
so they were not read again. Try again in a few seconds.</p><p><a href=\"/.pomerium/\">Back</a></p>"
        ),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(GROUPS_REFRESH_EVERY));
    r
}

fn sign_out_form(csrf: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/.pomerium/sign_out\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button type=\"submit\">Sign out</button></form>",
        respond::escape(csrf)
    )
}

/// `/.pomerium/user`: the session as JSON, never cached.
pub(super) fn user_json(s: &Session) -> Response<ResponseBody> {
    let body = serde_json::json!({
        "sub": s.sub,
        "email": s.email,
        "name": s.name,
        "groups": s.groups,
        "claims": s.claims,
        "session_expires_at": s.expires_at,
    });
    let mut r = Response::new(ResponseBody::full(body.to_string()));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
