// Test-only: included from its parent module under #[cfg(test)].
//! Tests for the example policy files in `policies/`: each parses without a problem,
//! compiles, and does what its comment says.

use super::*;

#[test]
fn every_example_in_policies_parses_and_compiles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("policies/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let node = crate::config::yaml::parse(&text).expect("valid YAML");
        let mut problems = Problems::new();
        let policy = parse_policy(&node, "", &mut problems);
        assert!(
            problems.errors().is_empty() && problems.warnings().is_empty(),
            "{}: {:?} {:?}",
            path.display(),
            problems.errors(),
            problems.warnings()
        );
        let policy = policy.expect("no problems means a policy");
        let access = Access {
            policy_files: vec![(path.clone(), policy)],
            ..Access::default()
        };
        let _ = CompiledPolicy::compile(&access);
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    let want = [
        "admins-write.yaml",
        "engineering.yaml",
        "no-contractors.yaml",
        "office-hours.yaml",
    ];
    assert_eq!(names, want);
}

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
