//! End to end against a real OpenID Provider nobody here wrote: the npm package
//! `oidc-provider` (tests/e2e), started on 127.0.0.1 for each test. A browser-like
//! client with a cookie jar signs in through the proxy with `client_secret_basic` and
//! with `client_secret_post`, reaches the app, gets its tokens refreshed, and signs out.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::Jar;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use base64::Engine as _;

use crate::support::{Echo, TestProxy, upstream};
use portcullis::demo::okta::MockOkta;

const OKTA_TOKEN: &str = "00-e2e-api-token";

/// The provider process; killed when dropped.
struct Op {
    child: Child,
    issuer: String,
}

impl Drop for Op {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn start_op(proxy_port: u16, access_ttl: u64) -> Op {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    assert!(
        dir.join("node_modules/oidc-provider").exists(),
        "run `npm ci --prefix tests/e2e` (tests/run.sh does)"
    );
    let mut child = Command::new("node")
        .arg(dir.join("provider.mjs"))
        .arg("0")
        .env(
            "OP_REDIRECT_URIS",
            format!("http://app.localtest:{proxy_port}/oauth2/callback"),
        )
        .env(
            "OP_POST_LOGOUT_URIS",
            format!("http://app.localtest:{proxy_port}/"),
        )
        .env("OP_ACCESS_TTL", access_ttl.to_string())
        .env("OP_EXIT_ON_STDIN_EOF", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let issuer = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read") {
            if let Some(issuer) = line.strip_prefix("READY ") {
                return issuer.to_owned();
            }
        }
        panic!("provider exited before READY");
    })
    .await
    .expect("provider start");
    Op { child, issuer }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn browser(proxy: std::net::SocketAddr) -> (reqwest::Client, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .resolve_to_addrs("app.localtest", &[proxy])
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    (client, jar)
}

fn location(r: &reqwest::Response, base: &str) -> String {
    let loc = r.headers()["location"].to_str().unwrap();
    reqwest::Url::parse(base)
        .unwrap()
        .join(loc)
        .unwrap()
        .to_string()
}

fn hidden_prompt(html: &str) -> String {
    let i = html.find("name=\"prompt\"").expect("a prompt field");
    let value = &html[i..];
    let start = value.find("value=\"").unwrap() + 7;
    value[start..start + value[start..].find('"').unwrap()].to_owned()
}

/// Follows redirects by hand from `url`, filling the provider's login and consent forms,
/// until the response is no longer a redirect. Returns it and the URL it came from.
async fn browse(
    client: &reqwest::Client,
    mut url: String,
    login: &str,
) -> (reqwest::Response, String) {
    for _ in 0..20 {
        let r = client
            .get(&url)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        if r.status().is_redirection() {
            url = location(&r, &url);
            continue;
        }
        if url.contains("/interaction/") && r.status() == 200 {
            let html = r.text().await.unwrap();
            let prompt = hidden_prompt(&html);
            let mut form = vec![("prompt", prompt.clone())];
            if prompt == "login" {
                form.push(("login", login.to_owned()));
                form.push(("password", "any".to_owned()));
            }
            let r = client.post(&url).form(&form).send().await.unwrap();
            assert!(
                r.status().is_redirection(),
                "form {prompt} → {}",
                r.status()
            );
            url = location(&r, &url);
            continue;
        }
        return (r, url);
    }
    panic!("too many redirects");
}

async fn proxy_for(
    op: &Op,
    port: u16,
    client_id: &str,
    method: &str,
    up: &upstream::Upstream,
    okta: &MockOkta,
) -> TestProxy {
    let account = base64::engine::general_purpose::STANDARD
        .encode(format!("{{\"api_key\":\"{OKTA_TOKEN}\"}}"));
    let yaml = format!(
        "address: 127.0.0.1:{port}\ninsecure_server: true\nidp_provider: okta\nidp_provider_url: {issuer}\n\
         idp_directory_url: {okta_url}\nidp_service_account: {account}\n\
         idp_client_id: {client_id}\nidp_client_secret: e2e-secret\nidp_token_endpoint_auth_method: {method}\nidp_request_params: {{prompt: consent}}\n\
         cookie_secret: {secret}\nshared_secret: {secret}\nsignout_redirect_url: http://app.localtest:{port}/\n\
         routes:\n  - from: http://app.localtest\n    prefix: /admin\n    to: {up}\n    allowed_groups: [platform-admins]\n\
         \x20 - from: http://app.localtest\n    prefix: /finance\n    to: {up}\n    allowed_groups: [finance]\n\
         \x20 - from: http://app.localtest\n    to: {up}\n    allow_any_authenticated_user: true\n",
        issuer = op.issuer,
        okta_url = okta.url(),
        secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        up = up.url(),
    );
    TestProxy::start(&yaml).await
}

async fn token_log(op: &Op) -> Vec<serde_json::Value> {
    reqwest::get(format!("{}/__e2e/token-log", op.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn sign_in_refresh_and_sign_out(client_id: &str, method: &str) {
    let up = upstream::start("app").await;
    let port = free_port();
    let op = start_op(port, 2).await;
    let okta = MockOkta::start(OKTA_TOKEN).await;
    okta.set_groups("eng-alice", &[("00g-plat", "platform-admins")]);
    let proxy = proxy_for(&op, port, client_id, method, &up, &okta).await;
    let (browser, _jar) = browser(proxy.addr);
    let app = format!("http://app.localtest:{port}/dashboard?tab=1");

    // Discovery runs in the background at start: wait until sign-in is offered.
    let mut first = None;
    for _ in 0..100 {
        let r = browser
            .get(&app)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        if r.status() == 302 {
            first = Some(location(&r, &app));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let authorize = first.expect("a redirect to the provider");
    assert!(
        authorize.starts_with(&format!("{}/auth?", op.issuer)),
        "{authorize}"
    );
    assert!(authorize.contains("code_challenge_method=S256") && authorize.contains("nonce="));

    // The whole sign-in, ending on the app itself.
    let (r, url) = browse(&browser, authorize, "eng-alice").await;
    if url != app {
        panic!(
            "sign-in ended at {url} with {}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    let echo = Echo::from(r).await;
    assert_eq!(echo.uri(), "/dashboard?tab=1");
    let cookies = echo.header("cookie").unwrap_or_default();
    assert!(
        !cookies.contains("_pomerium"),
        "our cookies never reach the upstream: {cookies}"
    );

    let user: serde_json::Value = browser
        .get(format!("http://app.localtest:{port}/.pomerium/user"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user["sub"], "eng-alice");
    assert_eq!(user["email"], "eng-alice@example.com");
    assert_eq!(
        user["groups"],
        serde_json::json!(["00g-plat", "engineering", "platform-admins"]),
        "the token's groups claim plus the Okta directory's ids and names"
    );
    assert_eq!(okta.requests(), 1, "one directory call at sign-in");
    let admin = browser
        .get(format!("http://app.localtest:{port}/admin/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        Echo::from(admin).await.uri(),
        "/admin/",
        "group-gated route open to a member"
    );
    let finance = browser
        .get(format!("http://app.localtest:{port}/finance/"))
        .send()
        .await
        .unwrap();
    assert_eq!(finance.status(), 403, "and closed to a non-member");
    let log = token_log(&op).await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0]["grant_type"].as_str(),
            log[0]["auth_method"].as_str()
        ),
        (Some("authorization_code"), Some(method))
    );

    // The access token lives 2 s at the provider; once it is due, the next request refreshes it.
    let mut refreshed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = browser.get(&app).send().await.unwrap();
        assert_eq!(r.status(), 200);
        if token_log(&op)
            .await
            .iter()
            .any(|c| c["grant_type"] == "refresh_token")
        {
            refreshed = true;
            break;
        }
    }
    assert!(refreshed, "the proxy refreshed the tokens");
    let log = token_log(&op).await;
    let refresh = log
        .iter()
        .find(|c| c["grant_type"] == "refresh_token")
        .unwrap();
    assert_eq!(
        (refresh["status"].as_u64(), refresh["auth_method"].as_str()),
        (Some(200), Some(method))
    );
    // And again after rotation: the rotated refresh token was kept.
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(browser.get(&app).send().await.unwrap().status(), 200);
        if token_log(&op)
            .await
            .iter()
            .filter(|c| c["grant_type"] == "refresh_token" && c["status"] == 200)
            .count()
            >= 2
        {
            break;
        }
    }
    assert!(
        token_log(&op)
            .await
            .iter()
            .filter(|c| c["grant_type"] == "refresh_token" && c["status"] == 200)
            .count()
            >= 2
    );

    // Sign out: the confirmation page's form, then the provider's end-session endpoint.
    let page = browser
        .get(format!("http://app.localtest:{port}/.pomerium/sign_out"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r = browser
        .post(format!("http://app.localtest:{port}/.pomerium/sign_out"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let end = location(&r, &app);
    assert!(
        end.starts_with(&format!("{}/session/end", op.issuer)) && end.contains("id_token_hint="),
        "{end}"
    );
    let r = browser
        .get(&app)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the session is gone");
    assert!(
        token_log(&op)
            .await
            .iter()
            .any(|c| c["path"] == "/token/revocation" && c["status"] == 200),
        "refresh token revoked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_client_secret_basic() {
    sign_in_refresh_and_sign_out("portcullis-basic", "client_secret_basic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_client_secret_post() {
    sign_in_refresh_and_sign_out("portcullis-post", "client_secret_post").await;
}
