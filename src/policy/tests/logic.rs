//! Tests for how criteria combine: Kleene `and`/`or`/`not`/`nor` (and their aliases), deny
//! over allow, sign-in versus deny for anonymous users, the public-path example, and the
//! malformed-email rule.

use super::*;

/// The value each stand-in criterion takes for an anonymous request.
const T: &str = "accept: true";
const F: &str = "reject: true";
const U: &str = "user: someone";

#[test]
fn operators_follow_kleene_logic() {
    let pairs = [(T, T), (T, F), (T, U), (F, U), (U, U), (F, F)];
    let table: [(&[&str], [Outcome; 6]); 4] = [
        (&["and"], [Allow, Deny, SignIn, Deny, SignIn, Deny]),
        (&["or"], [Allow, Allow, Allow, SignIn, SignIn, Deny]),
        (
            &["not", "none_of"],
            [Deny, Deny, Deny, SignIn, SignIn, Allow],
        ),
        (
            &["nor", "not_all"],
            [Deny, Allow, SignIn, Allow, SignIn, Allow],
        ),
    ];
    let anon = Case {
        user: None,
        ..Case::standard()
    };
    for (names, wants) in table {
        for name in names {
            for ((a, b), want) in pairs.iter().zip(wants) {
                for (x, y) in [(a, b), (b, a)] {
                    let policy = ppl(&format!("allow:\n  {name}:\n    - {x}\n    - {y}\n"));
                    assert_eq!(anon.decide(&policy).outcome, want, "{name} [{x}, {y}]");
                }
            }
        }
    }
    let singles = [
        ("not", T, Deny),
        ("not", F, Allow),
        ("not", U, SignIn),
        ("nor", T, Deny),
        ("nor", F, Allow),
        ("nor", U, SignIn),
        ("and", U, SignIn),
        ("or", F, Deny),
    ];
    for (name, x, want) in singles {
        let policy = ppl(&format!("allow:\n  {name}:\n    - {x}\n"));
        assert_eq!(anon.decide(&policy).outcome, want, "{name} [{x}]");
    }
    let nested = [
        (format!("{{or: [{{and: [{T}, {U}]}}, {F}]}}"), SignIn),
        (format!("{{or: [{{and: [{T}, {U}]}}, {T}]}}"), Allow),
        (format!("{{and: [{{or: [{F}, {U}]}}, {F}]}}"), Deny),
        (format!("{{not: [{{nor: [{T}, {F}]}}]}}"), Deny),
        (
            format!("{{not_all: [{{none_of: [{F}]}}, {{or: [{T}]}}]}}"),
            Deny,
        ),
        // Several operators in one body are OR-ed.
        (format!("{{and: [{F}], or: [{T}]}}"), Allow),
        (format!("{{and: [{F}], not: [{U}]}}"), SignIn),
        (format!("{{and: [{F}], not: [{T}]}}"), Deny),
    ];
    for (body, want) in nested {
        let policy = ppl(&format!("allow: {body}\n"));
        assert_eq!(anon.decide(&policy).outcome, want, "{body}");
    }
    // Several rules of one action are OR-ed.
    let rules = ppl(&format!(
        "- allow: {{and: [{F}]}}\n- allow: {{and: [{U}]}}\n"
    ));
    assert_eq!(anon.decide(&rules).outcome, SignIn);
    let rules = ppl(&format!(
        "- allow: {{and: [{F}]}}\n- allow: {{or: [{T}]}}\n"
    ));
    assert_eq!(anon.decide(&rules).outcome, Allow);
}

#[test]
fn deny_wins_and_anonymous_users_sign_in_only_when_a_user_matters() {
    let contractor = session("c1", Some("bob@contractors.example.com"), &[], json!({}));
    let with = |user: Option<Session>| Case {
        user,
        ..Case::standard()
    };
    let deny_contractors = "allow: {or: [{authenticated_user: true}]}\n\
                            deny: {or: [{email: {ends_with: '@contractors.example.com'}}]}\n";
    let p = ppl(deny_contractors);
    assert_eq!(with(Some(alice())).decide(&p).outcome, Allow);
    assert_eq!(with(Some(contractor.clone())).decide(&p).outcome, Deny);
    assert_eq!(with(None).decide(&p).outcome, SignIn);

    let rows: [(&str, Option<Session>, Outcome); 9] = [
        // Deny overrides a true allow, even `accept`.
        (
            "allow: {or: [accept: 1]}\ndeny: {or: [http_path: /api/items]}",
            None,
            Deny,
        ),
        // An unknown deny side asks for sign-in even though allow is true.
        (
            "allow: {or: [accept: 1]}\ndeny: {or: [user: bad]}",
            None,
            SignIn,
        ),
        (
            "allow: {or: [accept: 1]}\ndeny: {or: [user: bad]}",
            Some(alice()),
            Allow,
        ),
        // No allow criteria: deny, not sign-in.
        ("deny: {or: [source_ip: 192.168.0.0/16]}", None, Deny),
        ("allow: {or: [reject: 1]}", None, Deny),
        // ... unless a deny criterion needs a user.
        ("deny: {or: [user: bad]}", None, SignIn),
        ("deny: {or: [user: bad]}", Some(alice()), Deny),
        // An allow side that needs a user and is not yet true.
        ("allow: {or: [email: alice@example.com]}", None, SignIn),
        (
            "allow: {or: [email: bob@example.com]}",
            Some(contractor),
            Deny,
        ),
    ];
    for (yaml, user, want) in rows {
        assert_eq!(with(user).decide(&ppl(yaml)).outcome, want, "{yaml}");
    }
    let nothing = CompiledPolicy::compile(&Access::default());
    assert_eq!(
        with(None).decide(&nothing),
        Decision {
            outcome: Deny,
            reason: None
        }
    );
}

#[test]
fn public_health_path_and_sign_in_for_everything_else() {
    let p = ppl("allow:\n  or:\n    - http_path: /healthz\n    - authenticated_user: true\n");
    let req = |user: Option<Session>, path| Case {
        user,
        path,
        ..Case::standard()
    };
    assert_eq!(req(None, "/healthz").decide(&p).outcome, Allow);
    assert_eq!(req(None, "/").decide(&p).outcome, SignIn);
    assert_eq!(req(Some(alice()), "/").decide(&p).outcome, Allow);
    // Pomerium's full example adds a user deny rule: it makes every anonymous request, even
    // /healthz, sign in. Guarding the deny rule with the path keeps /healthz public.
    let blocked = "deny:\n  and:\n    - user: 00u9zzzzBADUSER\n";
    let p2 = ppl(&format!(
        "allow:\n  or:\n    - http_path: /healthz\n    - authenticated_user: true\n{blocked}"
    ));
    assert_eq!(req(None, "/healthz").decide(&p2).outcome, SignIn);
    let guarded =
        "deny:\n  and:\n    - not: [{http_path: /healthz}]\n    - user: 00u9zzzzBADUSER\n";
    let p3 = ppl(&format!(
        "allow:\n  or:\n    - http_path: /healthz\n    - authenticated_user: true\n{guarded}"
    ));
    assert_eq!(req(None, "/healthz").decide(&p3).outcome, Allow);
    assert_eq!(req(None, "/").decide(&p3).outcome, SignIn);
    let bad = session("00u9zzzzBADUSER", None, &[], json!({}));
    assert_eq!(req(Some(bad), "/").decide(&p3).outcome, Deny);
}

#[test]
fn malformed_emails_match_no_email_or_domain_criterion() {
    let conds = [
        "email: {not_in: [nobody@example.com]}",
        "email: {ends_with: '@example.com'}",
        "email: {contains: '@'}",
        "domain: {not_in: [nowhere.org]}",
        "domain: {ends_with: example.com}",
        "domain: {contains: '.'}",
    ];
    let emails = [
        Some("a@b@example.com"),
        Some("@example.com"),
        Some("alice@"),
        Some("alice.example.com"),
        Some(""),
        None,
    ];
    for email in emails {
        let case = Case {
            user: Some(session("u", email, &[], json!({}))),
            ..Case::standard()
        };
        for cond in conds {
            assert_eq!(case.decide(&one(cond)).outcome, Deny, "{email:?} {cond}");
        }
    }
    let good = Case {
        user: Some(session("u", Some("x@example.com"), &[], json!({}))),
        ..Case::standard()
    };
    for cond in conds {
        assert_eq!(good.decide(&one(cond)).outcome, Allow, "{cond}");
    }
}

#[test]
fn large_claim_numbers_and_odd_values_do_not_panic() {
    let claims = json!({"big": u64::MAX, "neg": -7, "tiny": 1e-300, "arr": [1.5e300, -0.0]});
    let case = Case {
        user: Some(session("u", None, &[], claims)),
        ..Case::standard()
    };
    // A number's text is exactly what serde_json writes for it.
    let text = |v: serde_json::Value| v.to_string();
    let rows = [
        format!("claim/big: '{}'", u64::MAX),
        s("claim/neg: '-7'"),
        format!("claim/tiny: '{}'", text(json!(1e-300))),
        format!("claim/arr: '{}'", text(json!(1.5e300))),
        format!("claim/arr: '{}'", text(json!(-0.0))),
    ];
    for cond in rows {
        assert_eq!(case.decide(&one(&cond)).outcome, Allow, "{cond}");
    }
    assert_eq!(case.decide(&one("claim/arr: '1.5'")).outcome, Deny);
    let far = Case {
        now: u64::MAX,
        ..Case::standard()
    };
    assert_eq!(far.decide(&one("day_of_week: '*'")).outcome, Deny);
    assert_eq!(
        far.decide(&one("date: {after: '2024-01-01'}")).outcome,
        Allow
    );
}
