// Test-only: included from its parent module under #[cfg(test)].
//! Tests for compilation: the legacy fields mean exactly the PPL they stand for, the static
//! facts (`can_never_allow`, `needs_user`, `mentioned_groups`), explanations, and the
//! example files in `policies/`.

use std::path::Path;

use http::Method;
use serde_json::json;

use super::super::ppl::parse_policy;
use super::*;
use crate::config::env::MapEnv;
use crate::config::problem::Problems;
use crate::policy::eval::tests::{Case, alice, at, ppl, session};
use crate::policy::eval::{Decision, Outcome};
use crate::session::Session;

/// The access settings of one route whose extra YAML lines are `extra`, loaded through the
/// real config loader; `policy_files` resolve against the crate root.
fn route(extra: &str) -> Access {
    let mut text = String::from(
        "insecure_server: true\nroutes:\n  - from: https://a.example.com\n    to: http://127.0.0.1:1\n",
    );
    for line in extra.lines() {
        text.push_str(&format!("    {line}\n"));
    }
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.yaml");
    let loaded = crate::config::load_str(&text, Some(&base), &MapEnv::default())
        .unwrap_or_else(|e| panic!("{text}\n{e}"));
    loaded.config.routes[0].access.clone()
}

fn bob() -> Session {
    session(
        "00u2",
        Some("BOB@example.com"),
        &["00g1"],
        json!({"level": 3}),
    )
}

/// Users and requests that tell the legacy fields apart.
fn grid() -> Vec<Case> {
    let users = [
        Some(alice()),
        Some(bob()),
        Some(session("Bob@Example.com", None, &[], json!({}))),
        Some(session(
            "x",
            Some("carol@other.org"),
            &["ops"],
            json!({"groups": "ops"}),
        )),
        Some(session(
            "y",
            Some("x@other.org@example.com"),
            &[],
            json!({}),
        )),
        Some(session("", None, &[], json!({}))),
        None,
    ];
    let mut cases = Vec::new();
    for user in users {
        for (method, cors) in [
            (Method::GET, false),
            (Method::OPTIONS, true),
            (Method::POST, false),
        ] {
            cases.push(Case {
                user: user.clone(),
                method,
                cors,
                ..Case::standard()
            });
        }
    }
    cases
}

#[test]
fn legacy_fields_mean_the_ppl_they_stand_for() {
    let pairs = [
        (
            "allow_public_unauthenticated_access: true",
            "allow: {or: [accept: true]}",
        ),
        (
            "allow_any_authenticated_user: true",
            "allow: {or: [authenticated_user: true]}",
        ),
        (
            "allowed_users: [00u1, Bob@Example.com]",
            "allow: {or: [user: 00u1, email: 00u1, user: Bob@Example.com, email: Bob@Example.com]}",
        ),
        (
            "allowed_domains: [Example.com, other.org]",
            "allow: {or: [domain: Example.com, domain: other.org]}",
        ),
        (
            "allowed_groups: [engineering, 00g1]",
            "allow: {or: [groups: engineering, groups: 00g1]}",
        ),
        (
            "allowed_idp_claims: {groups: [eng, ops], level: ['3']}",
            "allow: {or: [claim/groups: eng, claim/groups: ops, claim/level: '3']}",
        ),
        (
            "cors_allow_preflight: true\nallowed_domains: [example.com]",
            "allow: {or: [domain: example.com, cors_preflight: true]}",
        ),
        (
            "allow_any_authenticated_user: true\nallowed_groups: [ops]",
            "allow: {or: [authenticated_user: true, groups: {has: ops}]}",
        ),
        (
            "allowed_groups: [admins]\npolicy: {allow: {and: [http_method: POST, domain: other.org]}}",
            "[{allow: {or: [groups: admins]}}, {allow: {and: [http_method: POST, domain: other.org]}}]",
        ),
    ];
    for (legacy, equivalent) in pairs {
        let a = CompiledPolicy::compile(&route(legacy));
        let flow = if equivalent.starts_with('[') {
            equivalent.to_owned()
        } else {
            format!("{{{equivalent}}}")
        };
        let b = CompiledPolicy::compile(&route(&format!("policy: {flow}")));
        let mut allowed = 0;
        for case in grid() {
            let (x, y) = (case.decide(&a).outcome, case.decide(&b).outcome);
            assert_eq!(x, y, "{legacy} vs {equivalent} for {:?}", case.user);
            allowed += usize::from(x == Outcome::Allow);
        }
        assert!(allowed > 0, "{legacy}: the grid exercises an allow");
        assert_eq!(a.needs_user(), b.needs_user(), "{legacy}");
        assert_eq!(a.mentioned_groups(), b.mentioned_groups(), "{legacy}");
    }
}

#[test]
fn can_never_allow_spots_dead_routes() {
    assert!(CompiledPolicy::compile(&Access::default()).can_never_allow());
    let rows = [
        ("allow: {or: [reject: 1]}", true),
        ("allow: {and: [accept: 1, reject: 1]}", true),
        ("allow: {not: [accept: 1]}", true),
        ("allow: {nor: [accept: 1]}", true),
        ("deny: {or: [source_ip: 10.0.0.0/8]}", true),
        ("allow: {or: [accept: 1]}\ndeny: {or: [accept: 1]}", true),
        ("allow: {or: [accept: 1]}\ndeny: {not: [reject: 1]}", true),
        ("allow: {or: [accept: 1]}", false),
        ("allow: {or: [reject: 1, email: a@b.c]}", false),
        ("allow: {not: [reject: 1]}", false),
        ("allow: {or: [accept: 1]}\ndeny: {or: [user: bad]}", false),
        (
            "allow: {and: [authenticated_user: 1, {not: [user: x]}]}",
            false,
        ),
    ];
    for (yaml, want) in rows {
        assert_eq!(ppl(yaml).can_never_allow(), want, "{yaml}");
    }
    assert!(!CompiledPolicy::compile(&route("allowed_users: [a]")).can_never_allow());
}

#[test]
fn needs_user_only_when_the_user_can_change_the_outcome() {
    let rows = [
        ("allow: {or: [accept: 1]}", false),
        ("allow: {or: [source_ip: 10.0.0.0/8, http_path: /x]}", false),
        ("allow: {or: [accept: 1, email: a@b.c]}", false),
        ("allow: {and: [reject: 1, email: a@b.c]}", false),
        (
            "allow: {or: [email: a@b.c]}\ndeny: {or: [accept: 1]}",
            false,
        ),
        ("allow: {or: [authenticated_user: 1]}", true),
        ("allow: {or: [accept: 1]}\ndeny: {or: [user: bad]}", true),
        ("allow: {or: [reject: 1]}\ndeny: {or: [user: bad]}", true),
        (
            "allow: {or: [http_path: /healthz, authenticated_user: true]}",
            true,
        ),
    ];
    let users = [None, Some(alice()), Some(bob())];
    for (yaml, want) in rows {
        let p = ppl(yaml);
        assert_eq!(p.needs_user(), want, "{yaml}");
        if !want {
            // Without a user the outcome is the same as with any user.
            let outcomes: Vec<Outcome> = (users.iter())
                .map(|u| {
                    let case = Case {
                        user: u.clone(),
                        ..Case::standard()
                    };
                    case.decide(&p).outcome
                })
                .collect();
            assert!(outcomes.windows(2).all(|w| w[0] == w[1]), "{yaml}");
        }
    }
    assert!(!CompiledPolicy::compile(&Access::default()).needs_user());
    let public = route("allow_public_unauthenticated_access: true\ncors_allow_preflight: true");
    assert!(!CompiledPolicy::compile(&public).needs_user());
    assert!(CompiledPolicy::compile(&route("allowed_domains: [a.org]")).needs_user());
}

#[test]
fn mentioned_groups_come_from_groups_criteria_and_allowed_groups() {
    let access = route(
        "allowed_groups: [b, a]\n\
         policy:\n\
        \x20 allow: {or: [groups: c, groups: {is: a}], not: [groups: {exclude: d}]}\n\
        \x20 deny: {or: [claim/groups: e]}",
    );
    let p = CompiledPolicy::compile(&access);
    assert_eq!(p.mentioned_groups(), ["a", "b", "c", "d"]);
    assert!(p.uses_groups());
    assert!(
        ppl("allow: {or: [accept: 1]}")
            .mentioned_groups()
            .is_empty()
    );
}

#[test]
fn uses_groups_only_when_groups_can_change_the_outcome() {
    let rows = [
        ("allow: {or: [groups: eng]}", true),
        (
            "allow: {and: [domain: a.org, {not: [groups: contractors]}]}",
            true,
        ),
        (
            "allow: {or: [accept: 1]}\ndeny: {or: [groups: suspended]}",
            true,
        ),
        (
            "allow: {or: [reject: 1]}\ndeny: {or: [groups: suspended]}",
            false,
        ),
        ("allow: {or: [claim/groups: eng]}", false),
        ("allow: {or: [accept: 1, groups: eng]}", false),
        ("allow: {or: [groups: eng]}\ndeny: {or: [accept: 1]}", false),
    ];
    for (yaml, want) in rows {
        assert_eq!(ppl(yaml).uses_groups(), want, "{yaml}");
    }
    assert!(CompiledPolicy::compile(&route("allowed_groups: [eng]")).uses_groups());
    assert!(!CompiledPolicy::compile(&route("allowed_domains: [a.org]")).uses_groups());
}

fn why(p: &CompiledPolicy, case: &Case) -> (Outcome, String) {
    let d = case.decide(p);
    let text = d.reason.map(|r| p.explain(r)).unwrap_or_default();
    (d.outcome, text)
}

#[test]
fn explanations_name_the_rule_and_criterion() {
    let anon = Case {
        user: None,
        ..Case::standard()
    };
    let eve = Case {
        user: Some(session(
            "e",
            Some("eve@other.org"),
            &["engineering"],
            json!({}),
        )),
        ..Case::standard()
    };
    let files = CompiledPolicy::compile(&route(
        "allowed_domains: [example.com]\n\
         policy_files: [policies/engineering.yaml, policies/no-contractors.yaml]",
    ));
    let rows: Vec<(CompiledPolicy, Case, Outcome, &str)> = vec![
        (
            files.clone(),
            eve.clone(),
            Outcome::Allow,
            "allow rule 2 (policy_files[0] engineering.yaml): groups has \"engineering\"",
        ),
        (
            files.clone(),
            Case::standard(),
            Outcome::Allow,
            "allow rule 1 (legacy fields): allowed_domains: domain is \"example.com\"",
        ),
        (
            files,
            anon.clone(),
            Outcome::SignIn,
            "deny rule 1 (policy_files[1] no-contractors.yaml): \
             email ends_with \"@contractors.example.com\"",
        ),
        (
            ppl("allow: {and: [domain: example.com, http_method: {in: [GET, HEAD]}]}"),
            Case::standard(),
            Outcome::Allow,
            "allow rule 1 (policy): all of [domain is \"example.com\", http_method in [\"GET\", \"HEAD\"]]",
        ),
        (
            ppl("allow: {or: [http_path: /healthz, authenticated_user: true]}"),
            anon.clone(),
            Outcome::SignIn,
            "allow rule 1 (policy): authenticated_user",
        ),
        (
            ppl("allow: {not: [groups: contractors]}"),
            Case::standard(),
            Outcome::Allow,
            "allow rule 1 (policy): none of [groups has \"contractors\"]",
        ),
        (
            ppl("allow: {nor: [http_method: POST, accept: 1]}"),
            Case::standard(),
            Outcome::Allow,
            "allow rule 1 (policy): not all of [http_method is \"POST\", accept]",
        ),
        (
            ppl("- allow: {and: [reject: 1]}\n- deny: {or: [source_ip: 10.0.0.0/8]}"),
            anon,
            Outcome::Deny,
            "deny rule 1 (policy): source_ip in [10.0.0.0/8]",
        ),
        (
            ppl("allow: {and: [{or: [reject: 1, {and: [user: 00u1]}]}]}"),
            Case::standard(),
            Outcome::Allow,
            "allow rule 1 (policy): user is \"00u1\"",
        ),
        (
            ppl("allow: {and: [reject: 1], or: [user: 00u1, email: x@y.z]}"),
            Case::standard(),
            Outcome::Allow,
            "allow rule 1 (policy): user is \"00u1\"",
        ),
    ];
    for (policy, case, outcome, text) in rows {
        assert_eq!(why(&policy, &case), (outcome, text.to_owned()));
    }
}

#[test]
fn explain_decision_reads_as_a_sentence() {
    let p = ppl("allow: {or: [email: alice@example.com]}\ndeny: {or: [http_path: /admin]}");
    let say = |case: Case| p.explain_decision(&case.decide(&p));
    assert_eq!(
        say(Case::standard()),
        "allowed by allow rule 1 (policy): email is \"alice@example.com\""
    );
    let admin = Case {
        path: "/admin",
        ..Case::standard()
    };
    assert_eq!(
        say(admin),
        "denied by deny rule 1 (policy): http_path is \"/admin\""
    );
    let other = Case {
        user: Some(bob()),
        ..Case::standard()
    };
    assert_eq!(say(other), "denied: no allow rule matched");
    let anon = Case {
        user: None,
        ..Case::standard()
    };
    assert_eq!(
        say(anon),
        "sign-in needed for allow rule 1 (policy): email is \"alice@example.com\""
    );
    let d = Case::standard().decide(&p);
    let foreign = ppl("allow: {or: [accept: 1]}\n");
    assert!(matches!(
        d,
        Decision {
            reason: Some(_),
            ..
        }
    ));
    assert_eq!(
        foreign.explain(d.reason.unwrap()),
        "allow rule 1 (policy): accept"
    );
}

#[path = "examples_tests.rs"]
mod examples;
