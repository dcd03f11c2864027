//! Parser tests for the structure of a policy: rules (a map or a list of maps), actions,
//! operators and their aliases, nested bodies, the constant criteria `accept`/`reject`, and
//! problems in the structure with their exact paths.

use super::*;

#[test]
fn constants_parse_into_typed_data() {
    use Criterion as C;
    assert_parses(vec![
        ("accept: true", C::Accept),
        ("accept: ~", C::Accept),
        ("reject: 1", C::Reject),
    ]);
}

#[test]
fn constants_render_as_ppl_text() {
    assert_renders(&[("accept: 1", "accept")]);
}

#[test]
fn actions_and_operators_render_as_ppl_text() {
    assert_eq!(
        (Action::Allow.to_string(), Action::Deny.to_string()),
        (s("allow"), s("deny"))
    );
    let ops = [Operator::And, Operator::Or, Operator::Not, Operator::Nor].map(|o| o.to_string());
    assert_eq!(ops, ["and", "or", "not", "nor"]);
}

#[test]
fn rule_objects_and_lists_give_rules_in_order() {
    let policy = ok("allow: {or: [accept: 1]}\ndeny: {and: [reject: 1]}");
    let actions: Vec<Action> = policy.rules.iter().map(|r| r.action).collect();
    assert_eq!(actions, [Action::Allow, Action::Deny]);
    assert_eq!(
        policy.rules[1].body,
        Body {
            ops: vec![(Operator::And, vec![crit(Criterion::Reject)])]
        }
    );

    let policy =
        ok("- deny: {or: [accept: 1]}\n- allow: {or: [reject: 1]}\n  deny: {or: [user: u]}");
    let actions: Vec<Action> = policy.rules.iter().map(|r| r.action).collect();
    assert_eq!(actions, [Action::Deny, Action::Allow, Action::Deny]);
}

#[test]
fn operators_aliases_and_order_are_kept() {
    let policy = ok("allow:
  and: [accept: 1]
  none_of: [reject: 1]
  or: [user: a]
  not_all: [user: b]
  not: [user: c]
  nor: [user: d]");
    let ops: Vec<Operator> = policy.rules[0].body.ops.iter().map(|(op, _)| *op).collect();
    use Operator::*;
    assert_eq!(ops, [And, Not, Or, Nor, Not, Nor]);
    assert_eq!(
        policy.rules[0].body.ops[3].1,
        vec![crit(Criterion::User(is("b")))]
    );
    for (key, op) in [
        ("and", And),
        ("or", Or),
        ("not", Not),
        ("nor", Nor),
        ("none_of", Not),
        ("not_all", Nor),
    ] {
        assert_eq!(operator(key), Some(op), "{key}");
    }
    assert_eq!(operator("xor"), None);
}

#[test]
fn nested_bodies_parse_recursively() {
    let policy = ok("allow:
  and:
    - or:
        - email: A@x.com
        - not_all: [{groups: x}, {claim/y: z}]
    - user: u
    - and: [accept: 1]
      nor: [reject: 1]");
    let want = Body {
        ops: vec![(
            Operator::And,
            vec![
                Condition::Body(Body {
                    ops: vec![(
                        Operator::Or,
                        vec![
                            crit(Criterion::Email(is("a@x.com"))),
                            Condition::Body(Body {
                                ops: vec![(
                                    Operator::Nor,
                                    vec![
                                        crit(Criterion::Groups(has("x"))),
                                        crit(Criterion::Claim {
                                            path: vec![s("y")],
                                            matcher: has("z"),
                                        }),
                                    ],
                                )],
                            }),
                        ],
                    )],
                }),
                crit(Criterion::User(is("u"))),
                Condition::Body(Body {
                    ops: vec![
                        (Operator::And, vec![crit(Criterion::Accept)]),
                        (Operator::Nor, vec![crit(Criterion::Reject)]),
                    ],
                }),
            ],
        )],
    };
    assert_eq!(
        policy.rules,
        vec![Rule {
            action: Action::Allow,
            body: want
        }]
    );
}

#[test]
fn structure_problems_have_exact_paths() {
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("[]", vec!["policy: empty list; expected at least one rule"]),
        (
            "{}",
            vec!["policy: empty rule; expected `allow` and/or `deny`"],
        ),
        (
            "hello",
            vec![
                "policy: expected a map of `allow`/`deny` rules (or a list of them), found a string",
            ],
        ),
        (
            "~",
            vec![
                "policy: expected a map of `allow`/`deny` rules (or a list of them), found nothing",
            ],
        ),
        (
            "alow: {and: [accept: 1]}",
            vec!["policy.alow: unknown key; did you mean `allow`?"],
        ),
        (
            "allow: {and: []}",
            vec!["policy.allow.and: empty list; expected at least one condition"],
        ),
        (
            "allow: {nor: []}",
            vec!["policy.allow.nor: empty list; expected at least one condition"],
        ),
        (
            "allow: {andd: [accept: 1]}",
            vec!["policy.allow.andd: unknown key; did you mean `and`?"],
        ),
        (
            "allow: {}",
            vec!["policy.allow: empty map; expected `and`, `or`, `not` or `nor`"],
        ),
        (
            "allow: [accept: 1]",
            vec!["policy.allow: expected a map of `and`/`or`/`not`/`nor` lists, found a list"],
        ),
        (
            "deny: {and: {email: x}}",
            vec!["policy.deny.and: expected a list of conditions, found a map"],
        ),
        (
            "allow: {and: [{or: []}]}",
            vec!["policy.allow.and[0].or: empty list; expected at least one condition"],
        ),
        (
            "allow: {and: [{or: [accept: 1, emial: x]}]}",
            vec!["policy.allow.and[0].or[1].emial: unknown key; did you mean `email`?"],
        ),
        (
            "- allow: {or: [accept: 1]}\n- 5",
            vec![
                "policy[1]: expected a map of `allow`/`deny` rules (or a list of them), found a number",
            ],
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(parse(yaml).1, want, "{yaml}");
    }
}

#[test]
fn reference_examples_parse() {
    let examples = [
        "allow:\n  and:\n    - claim/groups: Engineering\ndeny:\n  or:\n    - email: { ends_with: \"@contractor.example.com\" }",
        "- allow:\n    and:\n      - domain: { is: example.com }\n      - http_method: { in: [GET, HEAD] }\n- allow:\n    or:\n      - groups: { has: \"00g1abcdEFGH\" }",
        "allow:\n  or:\n    - http_path: { is: /healthz }\n    - authenticated_user: true\ndeny:\n  and:\n    - user: { is: \"00u9zzzzBADUSER\" }",
    ];
    let rule_counts: Vec<usize> = examples.iter().map(|e| ok(e).rules.len()).collect();
    assert_eq!(rule_counts, [2, 2, 2]);
}
