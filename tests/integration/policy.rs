//! Policies end to end through the proxy with the mock provider, and the `policy
//! explain` / `check` commands.

use crate::support::signin::World;
use crate::support::upstream;
use portcullis::demo::idp::{IdpOptions, TestUser};

async fn world() -> (World, upstream::Upstream) {
    let up = upstream::start("policy").await;
    let u = up.url();
    let routes = format!(
        "  - from: http://other.example.com\n    prefix: /health\n    to: {u}\n    policy:\n      allow:\n        or:\n          - http_path: {{starts_with: /health}}\n\
         \x20 - from: http://other.example.com\n    prefix: /eng\n    to: {u}\n    policy:\n      allow:\n        and:\n          - groups: {{has: engineering}}\n\
         \x20 - from: http://other.example.com\n    prefix: /corp\n    to: {u}\n    allowed_domains: [corp.example]\n\
         \x20 - from: http://other.example.com\n    prefix: /docs\n    to: {u}\n    policy:\n      - allow:\n          and:\n            - authenticated_user: true\n            - http_method: {{in: [GET, HEAD]}}\n      - allow:\n          or:\n            - groups: {{has: writers}}\n      - deny:\n          or:\n            - email: {{ends_with: '@contractors.example'}}\n"
    );
    let w = World::start_with(IdpOptions::default(), "", &routes).await;
    w.ready().await;
    (w, up)
}

async fn as_user(w: &World, user: TestUser) -> crate::support::signin::Browser {
    w.idp.set_user(user);
    let b = w.browser();
    let r = b.sign_in(&w.url("other.example.com", "/eng")).await;
    assert_eq!(r.status(), 302);
    b
}

#[tokio::test]
async fn public_path_inside_a_protected_host() {
    let (w, _up) = world().await;
    let anonymous = w.browser();
    assert_eq!(
        anonymous
            .get_json(&w.url("other.example.com", "/health"))
            .await
            .status(),
        200
    );
    assert_eq!(
        anonymous
            .get_json(&w.url("other.example.com", "/eng"))
            .await
            .status(),
        401
    );
    assert_eq!(
        anonymous
            .get_html(&w.url("other.example.com", "/eng"))
            .await
            .status(),
        302
    );
}

#[tokio::test]
async fn group_domain_and_method_gates() {
    let (w, _up) = world().await;
    let eng = as_user(
        &w,
        TestUser::new("u1")
            .email("ann@corp.example")
            .groups(["engineering"]),
    )
    .await;
    let staff = as_user(
        &w,
        TestUser::new("u2")
            .email("bob@other.example")
            .groups(["staff"]),
    )
    .await;
    let writer = as_user(
        &w,
        TestUser::new("u3")
            .email("cat@other.example")
            .groups(["writers"]),
    )
    .await;
    let contractor = as_user(
        &w,
        TestUser::new("u4")
            .email("dan@contractors.example")
            .groups(["writers"]),
    )
    .await;
    let url = |p: &str| w.url("other.example.com", p);

    assert_eq!(
        eng.get_json(&url("/eng")).await.status(),
        200,
        "group-gated: member"
    );
    assert_eq!(
        staff.get_json(&url("/eng")).await.status(),
        403,
        "group-gated: not a member"
    );
    assert_eq!(
        eng.get_json(&url("/corp")).await.status(),
        200,
        "domain-gated: corp.example"
    );
    assert_eq!(
        staff.get_json(&url("/corp")).await.status(),
        403,
        "domain-gated: other domain"
    );

    // Everyone signed in reads; writers write; contractors are denied even as writers.
    assert_eq!(staff.get_json(&url("/docs")).await.status(), 200);
    let post = |b: &crate::support::signin::Browser| {
        b.client
            .post(url("/docs"))
            .header("accept", "application/json")
            .send()
    };
    assert_eq!(post(&staff).await.unwrap().status(), 403, "method-gated");
    assert_eq!(post(&writer).await.unwrap().status(), 200);
    assert_eq!(
        contractor.get_json(&url("/docs")).await.status(),
        403,
        "deny overrides allow"
    );

    // The 403 page says who is signed in, and offers to switch user — not the policy.
    let page = staff.get_html(&url("/eng")).await.text().await.unwrap();
    assert!(
        page.contains("Signed in as bob@other.example") && page.contains("Switch user"),
        "{page}"
    );
    assert!(!page.contains("engineering"), "the policy stays private");
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-policy-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("engineering.yaml"),
        "allow:\n  and:\n    - groups: {has: engineering}\n",
    )
    .unwrap();
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn portcullis(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env_clear()
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const CONFIG: &str = r#"insecure_server: true
routes:
  - {from: https://app.example.com, prefix: /admin, to: http://127.0.0.1:1, policy_files: [engineering.yaml]}
  - from: https://app.example.com
    to: http://127.0.0.1:1
    allowed_domains: [example.com]
    policy: {deny: {or: [{http_method: {in: [DELETE]}}]}}
  - {from: https://nobody.example.com, to: http://127.0.0.1:1}
"#;

#[test]
fn explain_shows_route_decision_and_reason() {
    let cfg = write("explain", CONFIG);
    let c = cfg.to_str().unwrap();
    let (ok, out) = portcullis(&[
        "policy",
        "explain",
        "-c",
        c,
        "--url",
        "https://app.example.com/admin/x",
        "--email",
        "a@example.com",
        "--groups",
        "engineering,staff",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("route: routes[0]") && out.contains("decision: allow"),
        "{out}"
    );
    assert!(
        out.contains("policy_files[0] engineering.yaml")
            && out.contains("groups has \"engineering\""),
        "{out}"
    );
    let (_, out) = portcullis(&[
        "policy",
        "explain",
        "-c",
        c,
        "--url",
        "https://app.example.com/x",
        "--email",
        "a@example.com",
        "--method",
        "DELETE",
    ]);
    assert!(
        out.contains("decision: deny") && out.contains("http_method"),
        "{out}"
    );
    let (_, out) = portcullis(&[
        "policy",
        "explain",
        "-c",
        c,
        "--url",
        "https://app.example.com/x",
    ]);
    assert!(out.contains("decision: sign-in"), "{out}");
    let (_, out) = portcullis(&[
        "policy",
        "explain",
        "-c",
        c,
        "--url",
        "https://app.example.com/x",
        "--claim",
        "dept=x",
        "--user",
        "00u1",
    ]);
    assert!(out.contains("decision: deny"), "no email, no domain: {out}");
    let (_, out) = portcullis(&[
        "policy",
        "explain",
        "-c",
        c,
        "--url",
        "https://app.example.com/admin/x",
        "--email",
        "a@example.com",
        "--groups",
        "staff",
    ]);
    assert!(
        out.contains("decision: deny")
            && out.contains(
                "allow rule 1 (policy_files[0] engineering.yaml): groups has \"engineering\" — not a member"
            ),
        "a deny names the rule and criterion: {out}"
    );
}

#[test]
fn check_warns_about_policies_that_allow_nobody() {
    let cfg = write("check", CONFIG);
    let (ok, out) = portcullis(&["check", "-c", cfg.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(
        out.contains("routes[2]: its policy can never allow anyone"),
        "{out}"
    );
    assert!(!out.contains("routes[0]: its policy"), "{out}");
}
