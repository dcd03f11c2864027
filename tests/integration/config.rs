//! Configuration: environment over file, base64 ROUTES, all problems at once, the
//! `check` and `gen-secret` commands.

use base64::Engine as _;
use portcullis::config::{self, ConfigError, env::MapEnv};

use crate::support::signin::SECRET;
use crate::support::{Echo, TestProxy, client, upstream};

fn problems(text: &str, env: &[(&str, &str)]) -> Vec<String> {
    match config::load_str(
        text,
        Some(std::path::Path::new("config.yaml")),
        &MapEnv::from_pairs(env.iter().copied()),
    ) {
        Err(ConfigError::Invalid { problems }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(e) => panic!("{e}"),
        Ok(_) => Vec::new(),
    }
}

#[tokio::test]
async fn environment_wins_over_the_file() {
    let a = upstream::start("a").await;
    let b = upstream::start("b").await;
    let file = format!(
        "insecure_server: false\ndefault_upstream_timeout: 1s\nroutes:\n  - from: https://app.example.com\n    to: {}\n    allow_public_unauthenticated_access: true\n",
        a.url()
    );
    let routes = format!(
        "- from: https://app.example.com\n  to: {}\n  allow_public_unauthenticated_access: true\n",
        b.url()
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(routes);
    let proxy =
        TestProxy::start_with_env(&file, &[("INSECURE_SERVER", "true"), ("ROUTES", &b64)]).await;
    let echo = Echo::from(
        client(proxy.addr)
            .get(format!("http://app.example.com:{}/", proxy.addr.port()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        echo.upstream(),
        "b",
        "ROUTES from the environment replaced the file's routes"
    );
}

#[test]
fn env_values_are_typed_like_file_values() {
    let env = [
        ("INSECURE_SERVER", "true"),
        ("IDP_SCOPES", "openid,email"),
        ("COOKIE_EXPIRE", "1h30m"),
        ("SET_RESPONSE_HEADERS", "X-Frame-Options:DENY,X-A:1"),
        ("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1"),
    ];
    let loaded = config::load_str("cookie_expire: 2h\n", None, &MapEnv::from_pairs(env)).unwrap();
    let c = loaded.config;
    assert!(c.server.insecure);
    assert_eq!(c.auth.idp.scopes, ["openid", "email"]);
    assert_eq!(c.auth.cookie.expire.as_secs(), 5400);
    assert_eq!(c.server.response_headers.len(), 2);
    assert_eq!(c.server.trusted_proxies.len(), 2);
}

#[test]
fn availability_limits_have_defaults_env_and_validation() {
    let c = config::load_str("insecure_server: true\n", None, &MapEnv::default())
        .unwrap()
        .config;
    assert_eq!(c.server.timeouts.send.as_secs(), 60);
    assert_eq!(c.server.max_connections, None, "derived at start");
    assert_eq!(c.server.upstream_max_connections, 1024);
    let env = [
        ("INSECURE_SERVER", "true"),
        ("TIMEOUT_SEND", "0"),
        ("MAX_CONNECTIONS", "5000"),
        ("UPSTREAM_MAX_CONNECTIONS", "64"),
    ];
    let c = config::load_str("timeout_send: 5s\n", None, &MapEnv::from_pairs(env))
        .unwrap()
        .config;
    assert!(
        c.server.timeouts.send.is_zero(),
        "0 = off, from the environment"
    );
    assert_eq!(c.server.max_connections, Some(5000));
    assert_eq!(c.server.upstream_max_connections, 64);
    let found = problems(
        "insecure_server: true\nmax_connections: 0\nupstream_max_connections: 0\ntimeout_send: 5\n",
        &[],
    );
    for key in [
        "max_connections",
        "upstream_max_connections",
        "timeout_send",
    ] {
        assert!(found.iter().any(|p| p.contains(key)), "{key} in {found:?}");
    }
}

#[test]
fn defaults_follow_pomerium() {
    let c = config::load_str("insecure_server: true\n", None, &MapEnv::default())
        .unwrap()
        .config;
    assert_eq!(c.server.address.port(), 443);
    assert_eq!(c.server.timeouts.default_upstream.as_secs(), 30);
    assert_eq!(c.server.timeouts.read.as_secs(), 30);
    assert_eq!(c.server.timeouts.write.as_secs(), 0);
    assert_eq!(c.server.timeouts.idle.as_secs(), 300);
    assert_eq!(c.auth.cookie.name, "_pomerium");
    assert_eq!(c.auth.cookie.expire.as_secs(), 14 * 3600);
    assert_eq!(
        c.auth.idp.scopes,
        ["openid", "profile", "email", "offline_access"]
    );
    assert_eq!(c.auth.idp.refresh_directory_interval.as_secs(), 600);
    assert_eq!(c.auth.idp.refresh_directory_timeout.as_secs(), 60);
    assert_eq!(c.server.max_request_header_bytes, 65536);
}

#[test]
fn secret_files_are_read_and_never_echoed() {
    let dir = std::env::temp_dir().join(format!("portcullis-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("client_secret");
    std::fs::write(&file, "s3cr3t-value\n").unwrap();
    let yaml = format!(
        "insecure_server: true\nidp_client_secret_file: {}\n",
        file.display()
    );
    let c = config::load_str(&yaml, None, &MapEnv::default())
        .unwrap()
        .config;
    assert_eq!(
        c.auth.idp.client_secret.as_ref().unwrap().expose(),
        "s3cr3t-value"
    );
    assert!(
        !format!("{c:?}").contains("s3cr3t-value"),
        "Debug output leaks a secret"
    );
    // A malformed secret is reported without its value.
    let all = problems("insecure_server: true\nshared_secret: not-base64-s3cr3t!!\nidp_provider: okta\nidp_service_account: '{\"api_key\":\"\"}'\n", &[]).join("\n");
    assert!(
        all.contains("shared_secret") && !all.contains("s3cr3t"),
        "{all}"
    );
}

#[test]
fn every_problem_is_reported_at_once_with_paths_and_lines() {
    let text = "\
insecure_server: true
timeout_idle: 5
log_levle: debug
routes:
  - from: https://a.example.com
    to: http://127.0.0.1:1
    allowed_grups: [admins]
  - from: https://b.example.com/path
    to: ftp://x
  - from: https://c.example.com
    to: http://127.0.0.1:1
    prefix_rewrite: /x
    regex_rewrite_pattern: a
    regex_rewrite_substitution: b
  - from: https://d.example.com
    to: http://127.0.0.1:1
    allow_public_unauthenticated_access: true
    allowed_users: [bob@example.com]
  - from: https://a.example.com
    to: http://127.0.0.1:2
    policy:
      allow:
        and:
          - emial: bob@example.com
";
    let all = problems(text, &[]);
    let expected = [
        "config.yaml:2: timeout_idle: 5 has no unit",
        "config.yaml:3: log_levle: unknown key; did you mean `log_level`?",
        "config.yaml:7: routes[0].allowed_grups: unknown key; did you mean `allowed_groups`?",
        "config.yaml:8: routes[1].from:",
        "config.yaml:9: routes[1].to[0]: scheme \"ftp\"",
        "config.yaml:12: routes[2].prefix_rewrite: cannot be combined",
        "config.yaml:17: routes[3].allow_public_unauthenticated_access: cannot be combined",
        "config.yaml:24: routes[4].policy.allow.and[0].emial",
    ];
    for want in expected {
        assert!(
            all.iter().any(|p| p.starts_with(want)),
            "missing {want:?} in:\n{}",
            all.join("\n")
        );
    }
    assert_eq!(all.len(), expected.len(), "{}", all.join("\n"));
}

#[test]
fn duplicate_routes_are_errors() {
    let text = "insecure_server: true\nroutes:\n  - {from: https://a.example.com, prefix: /x, to: http://127.0.0.1:1}\n  - {from: https://a.example.com, prefix: /x, to: http://127.0.0.1:2}\n";
    let all = problems(text, &[]);
    assert_eq!(all.len(), 1);
    assert!(
        all[0].contains("routes[1]: duplicate route") && all[0].contains("routes[0]"),
        "{}",
        all[0]
    );
}

#[test]
fn tls_is_required_unless_insecure() {
    let all = problems("address: ':8443'\n", &[]);
    assert!(
        all.iter().any(|p| p.contains("TLS needs a certificate")),
        "{all:?}"
    );
}

fn write_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-check-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn portcullis(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env_clear()
        .output()
        .unwrap()
}

#[test]
fn check_command_validates_without_starting() {
    let good = write_config(
        "good",
        "insecure_server: true\naddress: 127.0.0.1:1\nroutes:\n  - {from: https://a.example.com, to: http://127.0.0.1:1, allow_public_unauthenticated_access: true}\n  - {from: https://a.example.com, prefix: /api, to: http://127.0.0.1:2, allow_public_unauthenticated_access: true}\n",
    );
    let out = portcullis(&["check", "-c", good.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("routes[1] is never used") && stdout.contains("routes[0]"),
        "{stdout}"
    );

    let bad = write_config(
        "bad",
        "insecure_server: true\nroutes:\n  - {from: https://a.example.com, too: http://x}\n",
    );
    let out = portcullis(&["check", "--config", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("routes[0].too: unknown key; did you mean `to`?"),
        "{stderr}"
    );
    assert!(stderr.contains("missing `to`"), "{stderr}");
}

#[test]
fn check_warns_when_replicas_on_redis_would_generate_their_own_secrets() {
    let route = "insecure_server: true\nroutes:\n  - {from: https://a.example.com, to: http://127.0.0.1:1, allow_public_unauthenticated_access: true}\n";
    let redis = "databroker_storage_type: redis\ndatabroker_storage_connection_string: redis://127.0.0.1:1/\n";
    let none = write_config("redis-none", &format!("{redis}{route}"));
    let out = portcullis(&["check", "-c", none.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "warnings, not errors: {stdout}");
    for key in ["shared_secret", "cookie_secret", "signing_key"] {
        assert!(
            stdout.contains(&format!("redis, but {key} is not set")),
            "{key}: {stdout}"
        );
    }
    // The signing key derives from shared_secret, so that one alone is enough for it.
    let shared = write_config(
        "redis-shared",
        &format!("{redis}shared_secret: {SECRET}\n{route}"),
    );
    let out = portcullis(&["check", "-c", shared.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("redis, but cookie_secret is not set"),
        "{stdout}"
    );
    assert!(!stdout.contains("signing_key") && !stdout.contains("redis, but shared_secret"));
    let all = write_config(
        "redis-all",
        &format!("{redis}shared_secret: {SECRET}\ncookie_secret: {SECRET}\n{route}"),
    );
    let out = portcullis(&["check", "-c", all.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("warning"));
    // The same secrets missing with the memory store are no warning for check.
    let memory = write_config("memory", route);
    let out = portcullis(&["check", "-c", memory.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("is not set"));
}

#[test]
fn gen_secret_prints_32_random_bytes() {
    let a = portcullis(&["gen-secret"]);
    let b = portcullis(&["gen-secret"]);
    let decode = |o: &std::process::Output| {
        base64::engine::general_purpose::STANDARD
            .decode(String::from_utf8_lossy(&o.stdout).trim())
            .unwrap()
    };
    assert_eq!(decode(&a).len(), 32);
    assert_ne!(decode(&a), decode(&b));
}

#[test]
fn shipped_examples_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let loaded = config::load(Some(&path), &MapEnv::default())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!loaded.config.routes.is_empty(), "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 2);
    // The environment-only example: KEY=VALUE lines, comments skipped.
    let text = std::fs::read_to_string(dir.join("env.example")).unwrap();
    let pairs: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .filter_map(|l| l.split_once('='))
        .collect();
    let loaded = config::load(None, &MapEnv::from_pairs(pairs)).unwrap();
    assert_eq!(loaded.config.routes.len(), 1);
    assert!(loaded.config.server.insecure);
}
