//! Parser tests for problems that are not about one criterion's data: unknown and
//! unsupported names, sub-paths where none belong, conditions that are not one-key maps,
//! every problem reported with the caller's path, and no input that panics.

use super::*;

#[test]
fn condition_problems_have_exact_paths_and_messages() {
    assert_problems(vec![
        (
            "emial: x",
            vec![s("emial: unknown key; did you mean `email`?")],
        ),
        (
            "claims/groups: x",
            vec![s("claims/groups: unknown key; did you mean `claim`?")],
        ),
        ("zzzz: x", vec![s("zzzz: unknown key")]),
        ("zzzz/q: x", vec![s("zzzz/q: unknown key")]),
        (
            "device: {is: x}",
            vec![s("device: criterion `device` is not supported")],
        ),
        (
            "ssh_user: x",
            vec![s("ssh_user: criterion `ssh_user` is not supported")],
        ),
        ("email/x: a", vec![s("email/x: `email` takes no sub-path")]),
        (
            "accept/x: 1",
            vec![s("accept/x: `accept` takes no sub-path")],
        ),
        (
            "a: 1\nb: 2",
            vec![s(": a condition has exactly one key, found 2 (a, b)")],
        ),
        (
            "and: [accept: 1]\nemail: x",
            vec![s(": a condition has exactly one key, found 2 (and, email)")],
        ),
        (
            "just a string",
            vec![s(
                ": expected a one-key map such as `email: …`, found a string",
            )],
        ),
        (
            "{}",
            vec![s(": empty map; expected a criterion such as `email: …`")],
        ),
    ]);
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let (policy, errors) = parse(
        "- allow:
    and:
      - domain: example.com
      - emial: x
    or:
      - email: {starts_wth: a}
- deny:
    or: [{source_ip: bad}]
  alow: {}
- allow:
    or: [accept: 1]",
    );
    assert_eq!(policy, None);
    assert_eq!(
        errors,
        [
            "policy[0].allow.and[1].emial: unknown key; did you mean `email`?",
            "policy[0].allow.or[0].email.starts_wth: unknown key; did you mean `starts_with`?",
            "policy[1].deny.or[0].source_ip: \"bad\" is not an IP address or CIDR",
            "policy[1].alow: unknown key; did you mean `allow`?",
        ]
    );
}

#[test]
fn problems_continue_the_callers_path() {
    let mut problems = Problems::new();
    assert_eq!(
        parse_policy(
            &node("allow: {and: [emial: x]}"),
            "routes[3].policy",
            &mut problems
        ),
        None
    );
    assert_eq!(
        problems.errors()[0].path,
        "routes[3].policy.allow.and[0].emial"
    );
}

#[test]
fn no_input_panics_and_none_means_problems() {
    let data = [
        "~",
        "true",
        "false",
        "0",
        "-1.5",
        "''",
        "x",
        "'*'",
        "[]",
        "[~]",
        "[[1]]",
        "{}",
        "{is: ~}",
        "{has: []}",
        "{in: [1, 2]}",
        "{after: ~, before: {}}",
        "{timezone: [], after: 1}",
        "10.0.0.0/8",
        "'-'",
        "',,'",
        "mon-",
        "-fri",
        "'2024-01-01T00:00:00+99:99'",
        "{a: {b: {c: [1, {d: ~}]}}}",
    ];
    let names = CRITERIA
        .iter()
        .chain(&OPERATORS)
        .chain(&["claim/x", "claim/", "x/y/z", "", "/"]);
    for name in names {
        for d in data {
            let cond = Node::Map(vec![(s(name), node(d))]);
            let policy = Node::Map(vec![(
                s("allow"),
                Node::Map(vec![(s("or"), Node::List(vec![cond]))]),
            )]);
            parse_node(&policy);
        }
    }
}
