//! Tests that compiled policies decide as their source says: the legacy `allow*` fields
//! decide exactly as the PPL they stand for, and a policy that does not need a user decides
//! the same for every user.

use super::*;

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
