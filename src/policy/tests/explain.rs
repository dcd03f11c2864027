//! Tests for explanations: the rule (numbered per action, with its source) and the
//! criterion or operator group that decided, and the one-line sentence for logs.

use super::*;

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
    assert_eq!(
        say(other),
        "denied: allow rule 1 (policy): email is \"alice@example.com\" — the user's email does not match"
    );
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

#[test]
fn every_deny_names_the_rule_and_the_criterion() {
    let bob = || Case {
        user: Some(bob()),
        ..Case::standard()
    };
    let say = |yaml: &str, case: Case| {
        let p = ppl(yaml);
        p.explain_decision(&case.decide(&p))
    };
    assert_eq!(
        say("allow: {and: [groups: {has: admins}]}", bob()),
        "denied: allow rule 1 (policy): groups has \"admins\" — not a member"
    );
    assert_eq!(
        say(
            "allow: {and: [domain: example.com, http_method: {in: [GET]}]}",
            Case {
                method: http::Method::POST,
                ..Case::standard()
            }
        ),
        "denied: allow rule 1 (policy): http_method in [\"GET\"] — another method"
    );
    assert_eq!(
        say(
            "- allow: {or: [groups: admins, user: root]}\n- allow: {and: [http_path: /x]}",
            bob()
        ),
        "denied: allow rule 1 (policy): any of [groups has \"admins\", user is \"root\"] — \
         none of them held; 1 other allow rule did not hold either"
    );
    assert_eq!(
        CompiledPolicy::compile(&Access::default())
            .explain_decision(&bob().decide(&CompiledPolicy::compile(&Access::default()))),
        "denied: the policy has no allow rule"
    );
}
