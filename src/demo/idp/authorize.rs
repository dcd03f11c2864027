//! The mock provider's authorization endpoint — part of the test kit and the demo,
//! never on the proxy's request path: request checks, the user picker
//! ([`super::SignIn::Picker`]) or an immediate answer ([`super::SignIn::Automatic`]),
//! and the redirect back to the client with a one-time code (or an error).
//!
//! Invariant: nothing is sent to a `redirect_uri` unless the `client_id` is the
//! configured one and the `redirect_uri` is a registered callback; both the picker
//! (`GET`) and its form (`POST`) run every check, so a tampered form gains nothing.

use http::{HeaderValue, StatusCode, header};
use url::Url;

use super::state::{Account, Grant};
use super::{Behaviour, Idp, SESSION_COOKIE, SignIn, TestUser, tokens};
use crate::clock;
use crate::demo::users::{self, DemoUser};
use crate::demo::web::{self, Params, Reply, param, repeated};
use crate::respond::escape;

/// An authorization request that passed every check.
struct AuthRequest {
    redirect_uri: String,
    state: String,
    nonce: String,
    scope: String,
    challenge: String,
    prompt: Option<String>,
}

/// Why an authorization request was refused.
enum Refusal {
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

impl Idp {
    /// Checks an authorization request (RFC 6749 §4.1.1, RFC 7636, OIDC Core §3.1.2.1).
    fn check(&self, params: &Params) -> Result<AuthRequest, Refusal> {
        if repeated(params).is_some() {
            return Err(Refusal::Page("A parameter was given more than once."));
        }
        let get = |name| param(params, name).filter(|v| !v.is_empty());
        if get("client_id") != Some(self.opts.client_id.as_str()) {
            return Err(Refusal::Page("Unknown client_id."));
        }
        let redirect_uri = match get("redirect_uri") {
            Some(uri) if self.opts.callbacks.allows(uri) => uri.to_owned(),
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
        let Some(nonce) = get("nonce") else {
            return Err(refuse("invalid_request", "nonce is required"));
        };
        Ok(AuthRequest {
            redirect_uri,
            state: state.to_owned(),
            nonce: nonce.to_owned(),
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

    /// Back to the client with a fresh code for `account` (or the error
    /// [`Behaviour::authorize_error`] asks for), setting `cookie` if given.
    fn approve(
        &self,
        request: &AuthRequest,
        account: Account,
        cookie: Option<String>,
        b: &Behaviour,
    ) -> Reply {
        if let Some(error) = &b.authorize_error {
            let pairs = [
                ("error", error.as_str()),
                ("error_description", "<script>alert('idp')</script>"),
                ("state", request.state.as_str()),
            ];
            return self.back_to(&request.redirect_uri, &pairs);
        }
        let grant = Grant {
            account,
            scope: request.scope.clone(),
        };
        let (uri, challenge) = (&request.redirect_uri, &request.challenge);
        let code = self
            .state()
            .issue_code(grant, uri, challenge, &request.nonce, clock::now());
        let Some(code) = code else {
            let title = "Something went wrong";
            return self.page(StatusCode::INTERNAL_SERVER_ERROR, title, "");
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
            .append_pair("iss", &self.issuer);
        web::redirect(url.as_str())
    }

    /// `GET /authorize`: straight back with a code for the test user, or when the
    /// provider session knows the user (and `prompt` does not ask to log in again);
    /// else the user picker.
    pub(super) fn authorize(&self, query: Params, session: Option<&str>, b: &Behaviour) -> Reply {
        self.state().last_authorize = Some(query.clone());
        let request = match self.check(&query) {
            Ok(r) => r,
            Err(refusal) => return self.refused(refusal),
        };
        if let SignIn::Automatic = self.opts.sign_in {
            let user = self.state().user.clone();
            return self.approve(&request, test_account(user), None, b);
        }
        let prompts: Vec<&str> = request.prompt.as_deref().unwrap_or("").split(' ').collect();
        let now = clock::now();
        let known = session.and_then(|id| self.state().session(id, now));
        let known = known.and_then(|login| users::find(&self.users, &login).cloned());
        let ask = prompts.contains(&"login") || prompts.contains(&"select_account");
        match known {
            Some(user) if !ask => return self.approve(&request, demo_account(&user), None, b),
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
        self.picker(&query, &request)
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
passwords here.</p><form method=\"post\" action=\"{action}\" class=\"users\">{hidden}\
{buttons}<button type=\"submit\" name=\"cancel\" value=\"1\">Cancel</button></form>\
<p>Afterwards you return to <code>{redirect}</code>.</p>",
            action = escape(&format!("{}/authorize", self.opts.endpoint_prefix)),
            client = escape(&self.opts.client_id),
            redirect = escape(&request.redirect_uri),
        );
        self.page(StatusCode::OK, "Sign in", &body)
    }

    /// `POST /authorize`: the user picked (or cancelled); back to the client.
    pub(super) fn authorize_choice(&self, mut form: Params, b: &Behaviour) -> Reply {
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
                let session = self.state().start_session(user.login, clock::now());
                let cookie = session.map(|id| {
                    format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=28800")
                });
                self.approve(&request, demo_account(user), cookie, b)
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

fn test_account(user: TestUser) -> Account {
    Account { user, demo: false }
}

/// A demo user's claims: no `groups` (the demo's Okta API has them).
fn demo_account(user: &DemoUser) -> Account {
    let claims = TestUser::new(user.sub).email(user.email).name(user.name);
    Account {
        user: claims,
        demo: true,
    }
}

/// Removes `name` from `params`, returning its value.
fn take(params: &mut Params, name: &str) -> Option<String> {
    let i = params.iter().position(|(n, _)| n == name)?;
    Some(params.remove(i).1)
}
