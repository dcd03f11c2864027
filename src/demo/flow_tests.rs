// Test-only: included from its parent module under #[cfg(test)].
//! The whole demo in-process: `examples/demo.yaml` on free ports, then sign-in, the
//! verified identity at the app, 403s, paged Okta groups, and sign-out — driven with
//! reqwest (cookies on, redirects followed by hand, `*.localhost` resolved to loopback).

use std::net::SocketAddr;
use std::path::PathBuf;

use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use serde_json::Value;

use super::*;
use crate::config::env::MapEnv;

struct Setup {
    demo: Demo,
    client: Client,
    port: u16,
    dir: TempDir,
}

/// A folder removed when the test ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Setup {
    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}.localhost:{}{path}", self.port)
    }
}

async fn free_ports() -> [u16; 3] {
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let port = |l: &TcpListener| l.local_addr().unwrap().port();
    [
        port(&listeners[0]),
        port(&listeners[1]),
        port(&listeners[2]),
    ]
}

async fn setup() -> Setup {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let [proxy, idp, app] = free_ports().await;
    let policy = root.join("policies/engineering.yaml");
    let text = std::fs::read_to_string(root.join("examples/demo.yaml"))
        .unwrap()
        .replace(":8080", &format!(":{proxy}"))
        .replace(":9101", &format!(":{idp}"))
        .replace(":9102", &format!(":{app}"))
        .replace(
            "../policies/engineering.yaml",
            &policy.display().to_string(),
        );
    let dir = std::env::temp_dir().join(format!("portcullis-demo-{}-{proxy}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("demo.yaml");
    std::fs::write(&path, text).unwrap();
    let demo = Demo::start_with_env(&path, &MapEnv::default())
        .await
        .unwrap();
    assert_eq!(demo.proxy_addr.port(), proxy);
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut client = Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .no_proxy();
    for host in ["public", "app", "admin", "eng", "auth"] {
        client = client.resolve(&format!("{host}.localhost"), loopback);
    }
    Setup {
        demo,
        client: client.build().unwrap(),
        port: proxy,
        dir: TempDir(dir),
    }
}

struct Page {
    status: StatusCode,
    url: String,
    body: String,
}

/// GETs `url` as a browser would, following redirects; at the provider's user picker,
/// picks `login` (or stops there when None).
async fn visit(c: &Client, url: &str, login: Option<&str>) -> Page {
    let mut url = url.to_owned();
    for _ in 0..12 {
        let r = c
            .get(&url)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        let status = r.status();
        if status.is_redirection() {
            let location = r.headers()["location"].to_str().unwrap();
            url = reqwest::Url::parse(&url)
                .unwrap()
                .join(location)
                .unwrap()
                .to_string();
            continue;
        }
        let body = r.text().await.unwrap();
        let picker = status == 200 && url.contains("/oauth2/v1/authorize?");
        match login.filter(|_| picker) {
            Some(login) => {
                let parsed = reqwest::Url::parse(&url).unwrap();
                let mut form: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
                form.push(("login".into(), login.into()));
                let action = format!(
                    "{}/oauth2/v1/authorize",
                    &parsed[..url::Position::BeforePath]
                );
                let r = c.post(action).form(&form).send().await.unwrap();
                assert_eq!(r.status(), 302, "the picker answers with a redirect");
                url = r.headers()["location"].to_str().unwrap().to_owned();
            }
            None => return Page { status, url, body },
        }
    }
    panic!("too many redirects from {url}");
}

async fn json(c: &Client, url: &str) -> (StatusCode, Value) {
    let r = c
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn sign_out(s: &Setup) -> Page {
    let page = visit(&s.client, &s.url("app", "/.pomerium/"), None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the user page has a sign-out form")
        .to_owned();
    let r = s
        .client
        .post(s.url("app", "/.pomerium/sign_out"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("/oauth2/v1/logout?"), "{location}");
    visit(&s.client, &location, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_identity_groups_and_sign_out() {
    let s = setup().await;
    let c = &s.client;

    // The public route needs nobody; the app says so.
    let page = visit(c, &s.url("public", "/"), None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Demo app") && page.body.contains("No identity"));

    // bob signs in at app.localhost and the app verifies the proxy's assertion.
    let page = visit(c, &s.url("app", "/hello?x=1"), Some("bob")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Signature verified ✓"), "{}", page.body);
    assert!(page.body.contains("bob@demo.example"));
    let (status, echo) = json(c, &s.url("app", "/api")).await;
    assert_eq!(status, 200);
    assert_eq!(echo["identity"]["verified"], true, "{echo}");
    assert_eq!(echo["identity"]["claims"]["email"], "bob@demo.example");
    let groups = echo["identity"]["claims"]["groups"].to_string();
    assert!(groups.contains("staff") && groups.contains(&users::group("staff").id));
    assert_eq!(echo["request"]["target"], "/api");

    // Other hosts get bob's session by hand-off from auth.localhost; both deny him.
    for host in ["admin", "eng"] {
        let page = visit(c, &s.url(host, "/"), None).await;
        assert_eq!(page.status, 403, "{host}: {}", page.body);
    }

    // Sign-out ends the proxy session and the provider's, and lands on the public page.
    let landed = sign_out(&s).await;
    assert_eq!(landed.status, 200);
    assert!(
        landed.url.starts_with(&s.url("public", "/")),
        "{}",
        landed.url
    );
    // …everywhere: every host is sent to sign in again.
    for host in ["app", "admin"] {
        let page = visit(c, &s.url(host, "/"), None).await;
        assert!(
            page.url.contains("/oauth2/v1/authorize?"),
            "{host}: {}",
            page.url
        );
        assert!(
            page.body
                .contains("Demo identity provider — not for production")
        );
    }

    // carol's 30 groups come from 15 pages of the Management API: ids and names.
    let page = visit(c, &s.url("app", "/"), Some("carol")).await;
    assert_eq!(page.status, 200);
    let (status, user) = json(c, &s.url("app", "/.pomerium/user")).await;
    assert_eq!(status, 200);
    let groups: Vec<&str> = user["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(groups.len(), 60, "{groups:?}");
    assert!(
        groups.contains(&"project-28") && groups.contains(&users::group("engineering").id.as_str())
    );
    let page = visit(c, &s.url("admin", "/"), None).await;
    assert_eq!(page.status, 403);

    s.demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_reaches_admin_and_a_taken_port_is_reported() {
    let s = setup().await;
    let page = visit(&s.client, &s.url("admin", "/"), Some("alice")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("alice@demo.example") && page.body.contains("admins"));

    // A second demo on the same ports fails clearly instead of half-starting.
    let err = Demo::start_with_env(&s.dir.0.join("demo.yaml"), &MapEnv::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DemoError::Bind {
                what: "demo identity provider",
                ..
            }
        ),
        "{err}"
    );
    s.demo.stop().await;
}
