// Test-only: included from its parent module under #[cfg(test)].
//! Tests of the demo plan: the shipped `examples/demo.yaml`, loopback refusal, and the
//! redirect URIs the provider accepts.

use std::path::PathBuf;

use super::*;
use crate::config::env::MapEnv;

fn demo_yaml() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml")
}

fn plan_of(text: &str) -> Result<Plan, DemoError> {
    let loaded = crate::config::load_str(text, Some(&demo_yaml()), &MapEnv::default())
        .map_err(DemoError::from)?;
    Plan::from_config(&loaded.config)
}

fn shipped() -> String {
    std::fs::read_to_string(demo_yaml()).unwrap()
}

#[test]
fn the_shipped_demo_config_loads_and_plans() {
    let plan = plan_of(&shipped()).unwrap();
    assert_eq!(plan.proxy_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(plan.idp_addr.to_string(), "127.0.0.1:9101");
    assert_eq!(plan.app_addr.to_string(), "127.0.0.1:9102");
    assert_eq!(plan.issuer, "http://127.0.0.1:9101");
    assert_eq!(
        plan.api_token.as_ref().map(Secret::expose),
        Some("00demo-okta-api-token-not-secret")
    );
    assert_eq!(plan.start_url(), Some("http://app.localhost:8080"));
    let access: Vec<&str> = plan.routes.iter().map(|r| r.access.as_str()).collect();
    assert_eq!(
        access,
        [
            "anyone, no sign-in",
            "any signed-in user",
            "allowed_groups: admins",
            "policy file engineering.yaml"
        ]
    );
}

#[test]
fn anything_but_loopback_is_refused() {
    for (from, to, what) in [
        (
            "address: 127.0.0.1:8080",
            "address: 0.0.0.0:8080",
            "address",
        ),
        ("address: 127.0.0.1:8080", "address: :8080", "address"),
        (
            "idp_provider_url: http://127.0.0.1:9101",
            "idp_provider_url: https://10.0.0.1:9101",
            "idp_provider_url",
        ),
        (
            "idp_provider_url: http://127.0.0.1:9101",
            "idp_provider_url: https://idp.example.com:9101",
            "idp_provider_url",
        ),
        (
            "to: http://127.0.0.1:9102\n    allow_public",
            "to: http://192.168.1.5:9102\n    allow_public",
            "routes[0].to",
        ),
    ] {
        let text = shipped().replacen(from, to, 1);
        assert_ne!(text, shipped(), "{from} must be in demo.yaml");
        match plan_of(&text) {
            Err(DemoError::NotLoopback { what: w, .. }) => assert_eq!(w, what),
            other => panic!("{to}: expected NotLoopback, got {other:?}"),
        }
    }
    let err = plan_of(&shipped().replacen("address: 127.0.0.1:8080", "address: 0.0.0.0:8080", 1))
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[test]
fn the_provider_needs_its_settings() {
    let text = shipped().replacen("idp_client_secret: demo-client-secret", "", 1);
    assert!(matches!(
        plan_of(&text),
        Err(DemoError::Setting {
            key: "idp_client_secret",
            ..
        })
    ));
    let text = shipped().replacen(
        "idp_provider_url: http://127.0.0.1:9101 ",
        "idp_provider_url: http://127.0.0.1:9101/oauth2/default ",
        1,
    );
    assert!(matches!(
        plan_of(&text),
        Err(DemoError::Setting {
            key: "idp_provider_url",
            ..
        })
    ));
}

#[test]
fn only_the_authenticate_service_callback_is_registered() {
    let plan = plan_of(&shipped()).unwrap();
    assert!(
        plan.callbacks
            .allows("http://auth.localhost:8080/oauth2/callback")
    );
    assert!(
        !plan
            .callbacks
            .allows("http://app.localhost:8080/oauth2/callback")
    );
    assert!(
        !plan
            .callbacks
            .allows("http://auth.localhost:8081/oauth2/callback")
    );
}

#[test]
fn without_it_every_route_host_callback_is() {
    let text = shipped().replacen(
        "authenticate_service_url: http://auth.localhost:8080",
        "",
        1,
    );
    let plan = plan_of(&text).unwrap();
    let ok = |u: &str| plan.callbacks.allows(u);
    assert!(ok("http://app.localhost:8080/oauth2/callback"));
    assert!(ok("http://eng.localhost:8080/oauth2/callback"));
    assert!(
        !ok("http://auth.localhost:8080/oauth2/callback"),
        "not a route"
    );
    assert!(!ok("http://app.localhost:8081/oauth2/callback"), "port");
    assert!(!ok("https://app.localhost:8080/oauth2/callback"), "scheme");
    assert!(!ok("http://evil.example:8080/oauth2/callback"), "host");
    assert!(
        !ok("http://app.localhost:8080/oauth2/callback?x=1"),
        "query"
    );
    assert!(!ok("http://app.localhost:8080/other"), "path");
    assert!(
        !ok("http://u@app.localhost:8080/oauth2/callback"),
        "userinfo"
    );
    assert!(!ok("not a url"));
}

#[test]
fn wildcard_hosts_match_one_label() {
    let from = crate::config::route::parse_from("http://*.localhost").unwrap();
    let cb = Callbacks::RouteHosts(vec![from]);
    assert!(cb.allows("http://a.localhost:1234/oauth2/callback"));
    assert!(!cb.allows("http://a.b.localhost/oauth2/callback"));
    assert!(!cb.allows("http://localhost/oauth2/callback"));
    assert!(!cb.allows("http://xlocalhost/oauth2/callback"));
}
