//! The demo provider's authorization endpoint: request checks, the user picker, and the
//! redirect back to the client with a one-time code (or an error).
//!
//! Invariant: nothing is sent to a `redirect_uri` unless the `client_id` is the
//! configured one and the `redirect_uri` is a registered callback; both the picker
//! (`GET`) and its form (`POST`) run every check, so a tampered form gains nothing.

use http::{HeaderValue, StatusCode, header};
use url::Url;

use super::{AUTHORIZE_PATH, Provider, SESSION_COOKIE, tokens};
use crate::demo::users;
use crate::demo::web::{self, Params, Reply, param, repeated};
use crate::respond::escape;

/// An authorization request that passed every check.
pub(super) struct AuthRequest {
    pub(super) redirect_uri: String,
    pub(super) state: String,
    pub(super) nonce: Option<String>,
    pub(super) scope: String,
    pub(super) challenge: String,
    pub(super) prompt: Option<String>,
}

/// Why an authorization request was refused.
pub(super) enum Refusal {
    /// The client or `redirect_uri` cannot be trusted: show a page, never redirect.
    Page(&'static str),
    /// Tell the client, at its (registered) `redirect_uri`.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: &'static str,
    },
}

impl Provider {
    /// Checks an authorization request (RFC 6749 §4.1.1, RFC 7636, OIDC Core §3.1.2.1).
    fn check(&self, params: &Params) -> Result<AuthRequest, Refusal> {
        if repeated(params).is_some() {
            return Err(Refusal::Page("A parameter was given more than once."));
        }
        let get = |name| param(params, name).filter(|v| !v.is_empty());
        if get("client_id") != Some(self.plan.client_id.as_str()) {
            return Err(Refusal::Page("Unknown client_id."));
        }
        let redirect_uri = match get("redirect_uri") {
            Some(uri) if self.plan.callbacks.allows(uri) => uri.to_owned(),
            _ => {
                return Err(Refusal::Page(
                    "The redirect_uri is missing or is not a registered callback of this client.",
                ));
            }
        };
        let refuse = |error, description| Refusal::Redirect {
            redirect_uri: redirect_uri.clone(),
            state: get("state").map(str::to_owned),
            error,
            description,
        };
        if get("response_type") != Some("code") {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        let scope = get("scope").unwrap_or("");
        if !scope.split(' ').any(|s| s == "openid") {
            return Err(refuse("invalid_scope", "the openid scope is required"));
        }
        let challenge = get("code_challenge").filter(|c| tokens::is_pkce_value(c));
        let challenge = match (challenge, get("code_challenge_method")) {
            (Some(c), Some("S256")) => c.to_owned(),
            _ => {
                return Err(refuse(
                    "invalid_request",
                    "PKCE with code_challenge_method=S256 is required",
                ));
            }
        };
        let Some(state) = get("state") else {
            return Err(refuse("invalid_request", "state is required"));
        };
        Ok(AuthRequest {
            redirect_uri,
            state: state.to_owned(),
            nonce: get("nonce").map(str::to_owned),
            scope: scope.to_owned(),
            challenge,
            prompt: get("prompt").map(str::to_owned),
        })
    }

    fn refused(&self, refusal: Refusal) -> Reply {
        match refusal {
            Refusal::Page(why) => self.page(
                StatusCode::BAD_REQUEST,
                "Sign-in request refused",
                &format!("<p>{}</p>", escape(why)),
            ),
            Refusal::Redirect {
                redirect_uri,
                state,
                error,
                description,
            } => {
                let mut pairs = vec![("error", error), ("error_description", description)];
                if let Some(state) = state.as_deref() {
                    pairs.push(("state", state));
                }
                self.back_to(&redirect_uri, &pairs)
            }
        }
    }

    /// Back to the client with a fresh code for `login`, setting `cookie` if given.
    fn approve(&self, request: &AuthRequest, login: &str, cookie: Option<String>) -> Reply {
        let Some(code) = self.grants().issue_code(login, request) else {
            return self.page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "",
            );
        };
        let pairs = [("code", code.as_str()), ("state", request.state.as_str())];
        let mut reply = self.back_to(&request.redirect_uri, &pairs);
        if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
            reply.headers_mut().append(header::SET_COOKIE, v);
        }
        reply
    }

    /// Redirects to the (already checked) `redirect_uri` with `pairs` and `iss` added.
    fn back_to(&self, redirect_uri: &str, pairs: &[(&str, &str)]) -> Reply {
        let Ok(mut url) = Url::parse(redirect_uri) else {
            return self.page(StatusCode::BAD_REQUEST, "Bad redirect_uri", "");
        };
        url.query_pairs_mut()
            .extend_pairs(pairs)
            .append_pair("iss", &self.plan.issuer);
        web::redirect(url.as_str())
    }

    /// `GET /oauth2/v1/authorize`: straight back with a code when the provider session
    /// knows the user (and `prompt` does not ask to log in again), else the user picker.
    pub(super) fn authorize(&self, query: &Params, session: Option<&str>) -> Reply {
        let request = match self.check(query) {
            Ok(r) => r,
            Err(refusal) => return self.refused(refusal),
        };
        let prompts: Vec<&str> = request.prompt.as_deref().unwrap_or("").split(' ').collect();
        let known = session.and_then(|id| self.grants().session(id));
        let ask = prompts.contains(&"login") || prompts.contains(&"select_account");
        match known {
            Some(login) if !ask => return self.approve(&request, &login, None),
            _ if prompts.contains(&"none") => {
                let refusal = Refusal::Redirect {
                    redirect_uri: request.redirect_uri,
                    state: Some(request.state),
                    error: "login_required",
                    description: "nobody is signed in at the demo provider",
                };
                return self.refused(refusal);
            }
            _ => {}
        }
        self.picker(query, &request)
    }

    /// The page that asks which demo user signs in.
    fn picker(&self, query: &Params, request: &AuthRequest) -> Reply {
        let hidden: String = query
            .iter()
            .map(|(n, v)| {
                format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                    escape(n),
                    escape(v)
                )
            })
            .collect();
        let buttons: String = self
            .users
            .iter()
            .map(|u| {
                format!(
                    "<button type=\"submit\" name=\"login\" value=\"{login}\" data-user=\"{login}\">\
<strong>{name}</strong> · {email}<br><small>{role} — groups: {groups}</small></button>",
                    login = escape(u.login),
                    name = escape(u.name),
                    email = escape(u.email),
                    role = escape(u.role),
                    groups = escape(&users::summary(&u.groups)),
                )
            })
            .collect();
        let body = format!(
            "<p><code>{client}</code> asks you to sign in. Choose a demo user — there are no \
passwords here.</p><form method=\"post\" action=\"{AUTHORIZE_PATH}\" class=\"users\">{hidden}\
{buttons}<button type=\"submit\" name=\"cancel\" value=\"1\">Cancel</button></form>\
<p>Afterwards you return to <code>{redirect}</code>.</p>",
            client = escape(&self.plan.client_id),
            redirect = escape(&request.redirect_uri),
        );
        self.page(StatusCode::OK, "Sign in", &body)
    }

    /// `POST /oauth2/v1/authorize`: the user picked (or cancelled); back to the client.
    pub(super) fn authorize_choice(&self, mut form: Params) -> Reply {
        let login = take(&mut form, "login");
        let cancel = take(&mut form, "cancel");
        let request = match self.check(&form) {
            Ok(r) => r,
            Err(refusal) => return self.refused(refusal),
        };
        let state = request.state.as_str();
        let user = login.as_deref().and_then(|l| users::find(&self.users, l));
        match (user, cancel) {
            (Some(user), None) => {
                let session = self.grants().start_session(user.login);
                let cookie = session.map(|id| {
                    format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=28800")
                });
                self.approve(&request, user.login, cookie)
            }
            _ => {
                let why = "the user cancelled the sign-in";
                let pairs = [
                    ("error", "access_denied"),
                    ("error_description", why),
                    ("state", state),
                ];
                self.back_to(&request.redirect_uri, &pairs)
            }
        }
    }
}

/// Removes `name` from `params`, returning its value.
fn take(params: &mut Params, name: &str) -> Option<String> {
    let i = params.iter().position(|(n, _)| n == name)?;
    Some(params.remove(i).1)
}
