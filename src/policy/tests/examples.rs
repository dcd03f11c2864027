//! Tests that the example policy files in `policies/` do what their comments say.

use super::*;

/// A route that allows everyone signed in (or everyone) plus one example file.
fn with_file(allow: &str, file: &str) -> CompiledPolicy {
    let access = route(&format!("{allow}\npolicy_files: [policies/{file}]"));
    CompiledPolicy::compile(&access)
}

#[test]
fn the_examples_do_what_they_say() {
    let user = |u: Option<Session>, method: Method| Case {
        user: u,
        method,
        ..Case::standard()
    };
    let contractor = session(
        "c",
        Some("Dan@Contractors.Example.COM"),
        &["admins"],
        json!({}),
    );

    let eng = CompiledPolicy::compile(&route("policy_files: [policies/engineering.yaml]"));
    assert_eq!(
        user(Some(alice()), Method::GET).decide(&eng).outcome,
        Outcome::Allow
    );
    assert_eq!(
        user(Some(bob()), Method::GET).decide(&eng).outcome,
        Outcome::Deny
    );
    assert_eq!(
        user(None, Method::GET).decide(&eng).outcome,
        Outcome::SignIn
    );
    assert_eq!(eng.mentioned_groups(), ["engineering"]);

    let admins = CompiledPolicy::compile(&route("policy_files: [policies/admins-write.yaml]"));
    let rows = [
        (Some(alice()), Method::POST, Outcome::Allow),
        (Some(bob()), Method::GET, Outcome::Allow),
        (Some(bob()), Method::HEAD, Outcome::Allow),
        (Some(bob()), Method::POST, Outcome::Deny),
        (None, Method::GET, Outcome::SignIn),
    ];
    for (u, m, want) in rows {
        assert_eq!(user(u, m.clone()).decide(&admins).outcome, want, "{m}");
    }

    let office = with_file(
        "allow_public_unauthenticated_access: true",
        "office-hours.yaml",
    );
    assert!(!office.needs_user());
    let times = [
        ("2024-05-15T10:30:00Z", Outcome::Allow), // Wed 12:30 CEST
        ("2024-05-15T06:00:00Z", Outcome::Allow), // Wed 08:00:00
        ("2024-05-15T05:59:59Z", Outcome::Deny),  // Wed 07:59:59
        ("2024-05-15T16:00:00Z", Outcome::Deny),  // Wed 18:00:00
        ("2024-01-17T16:30:00Z", Outcome::Allow), // Wed 17:30 CET
        ("2024-05-18T10:00:00Z", Outcome::Deny),  // Saturday
        ("2024-05-17T21:30:00Z", Outcome::Deny),  // Fri 23:30 in Berlin
    ];
    for (t, want) in times {
        let case = Case {
            user: None,
            now: at(t),
            ..Case::standard()
        };
        assert_eq!(case.decide(&office).outcome, want, "{t}");
    }
    let alone = CompiledPolicy::compile(&route("policy_files: [policies/office-hours.yaml]"));
    assert!(alone.can_never_allow(), "a deny-only file grants nothing");

    let nc = with_file("allow_any_authenticated_user: true", "no-contractors.yaml");
    assert_eq!(
        user(Some(alice()), Method::GET).decide(&nc).outcome,
        Outcome::Allow
    );
    assert_eq!(
        user(Some(contractor), Method::GET).decide(&nc).outcome,
        Outcome::Deny
    );
    assert_eq!(user(None, Method::GET).decide(&nc).outcome, Outcome::SignIn);
}
