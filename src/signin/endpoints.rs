//! The sign-in endpoints: `/oauth2/callback`, `/.pomerium/sign_in`,
//! `/.pomerium/callback/`, `/.pomerium/sign_out`, `/.pomerium/signed_out`,
//! `/.pomerium/refresh_groups`, `/.pomerium/` and `/.pomerium/user` (their pages are in
//! [`super::pages`]).
//!
//! Every response that carries or reveals identity has `Cache-Control: no-store`;
//! responses to the provider's callback also `Referrer-Policy: no-referrer`. Sign-out
//! cannot be triggered cross-site: it takes a POST with a sealed, session-bound token.

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::pages::{GROUPS_REFRESH_EVERY, groups_refreshed_recently, user_json};
use super::{SignIn, SignInError};
use crate::body::ResponseBody;
use crate::clock;
use crate::error::ProxyError;
use crate::respond;
use crate::routes::RequestView;
use crate::seal::random_token;
use crate::session::CookieJar;

/// Whether `path` is one of ours (checked before user routes).
pub(crate) fn is_endpoint(path: &str) -> bool {
    path == "/oauth2/callback" || path == "/.pomerium" || path.starts_with("/.pomerium/")
}

/// What the endpoints need to know about the deployment.
pub struct Context<'a> {
    /// Whether a host is a configured route host (return URLs must be).
    pub known_host: &'a (dyn Fn(&str) -> bool + Sync),
    /// The scheme users reach this host with.
    pub scheme: &'a str,
    /// Whether the client is a browser (gets redirects and pages).
    pub html: bool,
}

impl SignIn {
    /// Serves one of our endpoints.
    pub async fn endpoint(
        &self,
        view: &RequestView,
        req: Request<Incoming>,
        ctx: &Context<'_>,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let query = view.query.as_deref().unwrap_or("");
        let on_auth_host = self.is_authenticate_host(view);
        match (view.path.as_str(), &view.method) {
            ("/oauth2/callback", &Method::GET)
                if on_auth_host || self.settings.authenticate_url.is_none() =>
            {
                self.callback(view, query, req.headers(), ctx).await
            }
            ("/.pomerium/sign_in", &Method::GET) if on_auth_host => {
                let (return_url, binding) = self.open_sign_in_link(query, ctx.known_host)?;
                let jar = CookieJar::from_headers(req.headers());
                if let Some(session) = self.sessions.load(req.headers()).await? {
                    return Ok(redirect(
                        &self.handoff_url(&session.id, &return_url, &binding)?,
                        Vec::new(),
                    ));
                }
                let callback = self.callback_url(view, ctx.scheme);
                let begin = self.begin(&callback, &return_url, Some(&binding), &jar)?;
                Ok(redirect(&begin.location, begin.cookies))
            }
            ("/.pomerium/callback/" | "/.pomerium/callback", &Method::GET) => {
                let jar = CookieJar::from_headers(req.headers());
                let binding_name = self.sessions.cookies.binding_name();
                let opened = self
                    .open_handoff(query, &view.authority(), jar.unique(&binding_name))
                    .await?;
                let session = self
                    .sessions
                    .store
                    .get(&opened.session)
                    .await
                    .ok()
                    .flatten()
                    .ok_or(SignInError::BadLink)?;
                let cookie = self
                    .sessions
                    .cookies
                    .session_cookie(&session.id, session.expires_at.saturating_sub(clock::now()));
                let clear = self.sessions.cookies.clear(&binding_name);
                Ok(redirect(&opened.return_url, vec![cookie, clear]))
            }
            ("/.pomerium/sign_out", &Method::GET) => {
                let session = self.sessions.load(req.headers()).await?;
                Ok(self.sign_out_confirm(session.as_deref()))
            }
            ("/.pomerium/sign_out", &Method::POST) => self.sign_out(req).await,
            ("/.pomerium/refresh_groups", &Method::POST) if self.sessions.groups.is_some() => {
                let session = self
                    .sessions
                    .load(req.headers())
                    .await?
                    .ok_or(ProxyError::Unauthenticated)?;
                self.check_csrf(req, &session).await?;
                // One directory read per session per GROUPS_REFRESH_EVERY; a full marker
                // set also counts as "too soon" (no directory call).
                let key = format!("refresh_groups:{}", session.id);
                let until = clock::now() + GROUPS_REFRESH_EVERY;
                if !self.markers.use_once(&key, until).await.unwrap_or(false) {
                    return Ok(groups_refreshed_recently());
                }
                self.sessions.refresh_groups(&session).await.map_err(|e| {
                    tracing::warn!(error = %e, "group refresh failed");
                    ProxyError::GroupsUnverified
                })?;
                Ok(redirect("/.pomerium/", Vec::new()))
            }
            ("/.pomerium/signed_out", &Method::GET) => Ok(page(
                StatusCode::OK,
                "Signed out",
                "<p>You are signed out.</p><p><a href=\"/\">Sign in again</a></p>",
            )),
            ("/.pomerium" | "/.pomerium/", &Method::GET) => {
                match self.sessions.load(req.headers()).await? {
                    Some(s) => Ok(self.user_page(&s)),
                    None if ctx.html && self.enabled() => {
                        self.sign_in_redirect(view, req.headers(), ctx.scheme)
                    }
                    None => Err(ProxyError::Unauthenticated),
                }
            }
            ("/.pomerium/user", &Method::GET) => match self.sessions.load(req.headers()).await? {
                Some(s) => Ok(user_json(&s)),
                None => Err(ProxyError::Unauthenticated),
            },
            (
                "/oauth2/callback"
                | "/.pomerium/sign_in"
                | "/.pomerium/callback/"
                | "/.pomerium/sign_out",
                _,
            ) => Err(ProxyError::MethodNotAllowed),
            _ => Err(ProxyError::NotFound),
        }
    }

    /// Whether this request is on the `authenticate_service_url` host.
    pub(crate) fn is_authenticate_host(&self, view: &RequestView) -> bool {
        self.settings
            .authenticate_url
            .as_ref()
            .and_then(super::handoff::authority)
            .is_some_and(|a| a.eq_ignore_ascii_case(&view.authority()))
    }

    /// Our callback URL: on the authenticate host when set, else on this host.
    fn callback_url(&self, view: &RequestView, scheme: &str) -> String {
        match &self.settings.authenticate_url {
            Some(url) => {
                let mut u = url.clone();
                u.set_path("/oauth2/callback");
                u.set_query(None);
                u.to_string()
            }
            None => format!("{scheme}://{}/oauth2/callback", view.authority()),
        }
    }

    /// The response that sends an unauthenticated browser to sign in.
    pub fn sign_in_redirect(
        &self,
        view: &RequestView,
        headers: &http::HeaderMap,
        scheme: &str,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let return_url = format!("{scheme}://{}{}", view.authority(), view.path_and_query());
        if let Some(auth) = &self.settings.authenticate_url
            && !self.is_authenticate_host(view)
        {
            // The browser binding: kept while a sign-in is pending (so several tabs
            // share it), else new.
            let jar = CookieJar::from_headers(headers);
            let name = self.sessions.cookies.binding_name();
            let binding = jar
                .unique(&name)
                .filter(|b| is_binding(b))
                .map_or_else(|| random_token(16), str::to_owned);
            let ttl = super::handoff::BINDING_TTL;
            let cookie = self.sessions.cookies.state_cookie(&name, &binding, ttl);
            let link = self.sign_in_link(auth, &return_url, &binding);
            return Ok(redirect(&link, vec![cookie]));
        }
        let jar = CookieJar::from_headers(headers);
        let begin = self.begin(&self.callback_url(view, scheme), &return_url, None, &jar)?;
        Ok(redirect(&begin.location, begin.cookies))
    }

    async fn callback(
        &self,
        view: &RequestView,
        query: &str,
        headers: &http::HeaderMap,
        ctx: &Context<'_>,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let super::flow::Finished {
            session,
            return_url,
            binding,
            clear_state,
        } = self.finish(query, headers).await?;
        super::handoff::check_return_url(&return_url, &|h| {
            (ctx.known_host)(h) || self.is_host(view, h)
        })?;
        let max_age = session.expires_at.saturating_sub(clock::now());
        let mut cookies = vec![
            clear_state,
            self.sessions.cookies.session_cookie(&session.id, max_age),
        ];
        let same_host = url::Url::parse(&return_url)
            .ok()
            .and_then(|u| super::handoff::authority(&u))
            .is_some_and(|a| a.eq_ignore_ascii_case(&view.authority()));
        let target = if same_host {
            return_url
        } else {
            let binding = binding.ok_or(SignInError::BadLink)?;
            self.handoff_url(&session.id, &return_url, &binding)?
        };
        tracing::info!(user = %session.sub, "signed in");
        let mut response = redirect(&target, Vec::new());
        for c in cookies.drain(..) {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
        Ok(response)
    }

    fn is_host(&self, view: &RequestView, host: &str) -> bool {
        host.eq_ignore_ascii_case(&view.host)
    }
}

/// Whether a binding cookie's value looks like one we made (base64url, 16–64 chars).
fn is_binding(value: &str) -> bool {
    (16..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A 302 that is never cached and leaks no referrer.
pub(crate) fn redirect(location: &str, cookies: Vec<HeaderValue>) -> Response<ResponseBody> {
    // Browsers follow the Location at once; the page is for anything that does not.
    let body = format!(
        "<p>Taking you on to the next step.</p><p><a href=\"{}\">Continue</a></p>",
        respond::escape(location)
    );
    let mut r = Response::new(ResponseBody::full(respond::html_page(
        "Redirecting",
        &body,
        None,
    )));
    *r.status_mut() = StatusCode::FOUND;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    for c in cookies {
        h.append(header::SET_COOKIE, c);
    }
    r
}

/// An HTML page showing identity: never cached.
pub(super) fn page(status: StatusCode, title: &str, body_html: &str) -> Response<ResponseBody> {
    let mut r = Response::new(ResponseBody::full(respond::html_page(
        title, body_html, None,
    )));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}
