// Test-only: included from its parent module under #[cfg(test)].
//! Tests for the PPL parser: every criterion and matcher, nesting, aliases, and each kind of
//! problem with its exact path.

use super::super::matcher::{parse_clock, parse_timestamp};
use super::*;
use chrono_tz::Tz;

/// Converts YAML test input into a config [`Node`], keeping map order.
fn node(yaml: &str) -> Node {
    fn convert(v: serde_yaml::Value) -> Node {
        use serde_yaml::Value as V;
        match v {
            V::Null => Node::Null,
            V::Bool(b) => Node::Bool(b),
            V::Number(n) => n
                .as_i64()
                .map_or_else(|| Node::Float(n.as_f64().unwrap_or(f64::NAN)), Node::Int),
            V::String(s) => Node::Str(s),
            V::Sequence(items) => Node::List(items.into_iter().map(convert).collect()),
            V::Mapping(m) => Node::Map(
                m.into_iter()
                    .map(|(k, v)| {
                        (
                            convert(k).as_scalar_string().unwrap_or_default(),
                            convert(v),
                        )
                    })
                    .collect(),
            ),
            V::Tagged(t) => convert(t.value),
        }
    }
    convert(serde_yaml::from_str(yaml).expect("test YAML parses"))
}

/// Parses `node` as a policy at path `policy`; returns the AST, errors and warnings as text.
fn parse_node(node: &Node) -> (Option<Policy>, Vec<String>, Vec<String>) {
    let mut problems = Problems::new();
    let policy = parse_policy(node, "policy", &mut problems);
    let errors: Vec<String> = problems.errors().iter().map(ToString::to_string).collect();
    let warnings = problems
        .warnings()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        policy.is_none(),
        !errors.is_empty(),
        "None exactly when problems were found: {errors:?}"
    );
    (policy, errors, warnings)
}

fn parse(yaml: &str) -> (Option<Policy>, Vec<String>) {
    let (policy, errors, _) = parse_node(&node(yaml));
    (policy, errors)
}

fn ok(yaml: &str) -> Policy {
    let (policy, errors) = parse(yaml);
    assert!(errors.is_empty(), "{yaml}: unexpected problems {errors:?}");
    policy.expect("no problems means a policy")
}

/// Wraps one condition as `allow: {and: [cond]}`; its problems are at `policy.allow.and[0]`.
fn wrap(cond: &str) -> Node {
    Node::Map(vec![(
        "allow".into(),
        Node::Map(vec![("and".into(), Node::List(vec![node(cond)]))]),
    )])
}

/// Parses one criterion condition; Ok(criterion) or Err(problems).
fn criterion(cond: &str) -> Result<Criterion, Vec<String>> {
    match parse_node(&wrap(cond)) {
        (Some(policy), _, _) => match &policy.rules[0].body.ops[0].1[0] {
            Condition::Criterion(c) => Ok(c.clone()),
            other => panic!("{cond}: expected a criterion, got {other:?}"),
        },
        (None, errors, _) => Err(errors),
    }
}

fn s(v: &str) -> String {
    v.to_owned()
}
fn sm(checks: Vec<StringCheck>) -> StringMatcher {
    StringMatcher { checks }
}
fn lm(checks: Vec<ListCheck>) -> ListMatcher {
    ListMatcher { checks }
}
fn is(v: &str) -> StringMatcher {
    sm(vec![StringCheck::Is(s(v))])
}
fn has(v: &str) -> ListMatcher {
    lm(vec![ListCheck::Has(s(v))])
}
fn net(v: &str) -> IpNet {
    v.parse().expect("test network")
}
fn ts(text: &str, unix_seconds: i64, nanos: u32) -> Timestamp {
    Timestamp {
        text: s(text),
        unix_seconds,
        nanos,
    }
}
fn days(bits: u8) -> Weekdays {
    Weekdays {
        days: DaySet { bits },
        timezone: None,
    }
}
fn crit(c: Criterion) -> Condition {
    Condition::Criterion(c)
}

#[test]
fn every_criterion_parses_into_typed_data() {
    use Criterion as C;
    use StringCheck as S;
    let cases: Vec<(&str, Criterion)> = vec![
        ("accept: true", C::Accept),
        ("accept: ~", C::Accept),
        ("reject: 1", C::Reject),
        ("authenticated_user: true", C::AuthenticatedUser),
        ("authenticated_user: ~", C::AuthenticatedUser),
        ("authenticated_user: {anything: [1]}", C::AuthenticatedUser),
        ("cors_preflight: ~", C::CorsPreflight),
        ("user: 00u1AbC", C::User(is("00u1AbC"))),
        ("user: 12345", C::User(is("12345"))),
        (
            "email: Alice@Example.COM",
            C::Email(is("alice@example.com")),
        ),
        (
            "email: {ends_with: '@Example.com', starts_with: Bob}",
            C::Email(sm(vec![
                S::EndsWith(s("@example.com")),
                S::StartsWith(s("bob")),
            ])),
        ),
        (
            "domain: {in: [Example.com, B.org]}",
            C::Domain(sm(vec![S::In(vec![s("example.com"), s("b.org")])])),
        ),
        (
            "domain: {not_in: [X.io]}",
            C::Domain(sm(vec![S::NotIn(vec![s("x.io")])])),
        ),
        ("http_method: post", C::HttpMethod(is("POST"))),
        (
            "http_method: {in: [get, Head]}",
            C::HttpMethod(sm(vec![S::In(vec![s("GET"), s("HEAD")])])),
        ),
        (
            "http_path: {starts_with: /API, not_in: [/a, /B], contains: x, is: /Y, ends_with: .J}",
            C::HttpPath(sm(vec![
                S::StartsWith(s("/API")),
                S::NotIn(vec![s("/a"), s("/B")]),
                S::Contains(s("x")),
                S::Is(s("/Y")),
                S::EndsWith(s(".J")),
            ])),
        ),
        ("groups: Admins", C::Groups(has("Admins"))),
        (
            "groups: {has: a, is: b, exclude: c}",
            C::Groups(lm(vec![
                ListCheck::Has(s("a")),
                ListCheck::Is(s("b")),
                ListCheck::Exclude(s("c")),
            ])),
        ),
        (
            "claim/groups: Engineering",
            C::Claim {
                path: vec![s("groups")],
                matcher: has("Engineering"),
            },
        ),
        (
            "claim/org.team/name: {is: x}",
            C::Claim {
                path: vec![s("org"), s("team"), s("name")],
                matcher: lm(vec![ListCheck::Is(s("x"))]),
            },
        ),
        (
            "claim/email_verified: true",
            C::Claim {
                path: vec![s("email_verified")],
                matcher: has("true"),
            },
        ),
        (
            "claim/a/b/c/d/e: x",
            C::Claim {
                path: ["a", "b", "c", "d", "e"].map(s).to_vec(),
                matcher: has("x"),
            },
        ),
        ("source_ip: 10.1.2.3", C::SourceIp(vec![net("10.1.2.3/32")])),
        ("source_ip: '::1'", C::SourceIp(vec![net("::1/128")])),
        (
            "source_ip: [10.9.0.0/16, 192.168.1.7/24, 'fe80::/10', 2001:db8::1]",
            C::SourceIp(vec![
                net("10.9.0.0/16"),
                net("192.168.1.0/24"),
                net("fe80::/10"),
                net("2001:db8::1/128"),
            ]),
        ),
        (
            "date: {after: '2024-01-01T00:00:00Z'}",
            C::Date(DateRange {
                after: Some(ts("2024-01-01T00:00:00Z", 1_704_067_200, 0)),
                before: None,
            }),
        ),
        (
            "date: {after: 2024-02-29, before: '2024-03-01T10:30:00.5+02:00'}",
            C::Date(DateRange {
                after: Some(ts("2024-02-29", 1_709_164_800, 0)),
                before: Some(ts(
                    "2024-03-01T10:30:00.5+02:00",
                    1_709_281_800,
                    500_000_000,
                )),
            }),
        ),
        (
            "date: {before: '2024-01-01'}",
            C::Date(DateRange {
                after: None,
                before: Some(ts("2024-01-01", 1_704_067_200, 0)),
            }),
        ),
        ("day_of_week: mon-fri", C::DayOfWeek(days(0b001_1111))),
        (
            "day_of_week: 'Mon,wednesday, SUN'",
            C::DayOfWeek(days(0b100_0101)),
        ),
        ("day_of_week: fri-mon", C::DayOfWeek(days(0b111_0001))),
        ("day_of_week: 'mon-tue,thu'", C::DayOfWeek(days(0b000_1011))),
        ("day_of_week: TUESDAY", C::DayOfWeek(days(0b000_0010))),
        ("day_of_week: '*'", C::DayOfWeek(days(0x7f))),
        (
            "day_of_week: {days: mon-fri, timezone: Europe/Berlin}",
            C::DayOfWeek(Weekdays {
                days: DaySet { bits: 0b001_1111 },
                timezone: Some(Tz::Europe__Berlin),
            }),
        ),
        (
            "day_of_week: {days: sat-sun}",
            C::DayOfWeek(days(0b110_0000)),
        ),
        (
            "time_of_day: {timezone: Europe/Paris, after: '09:00', before: '17:30:15'}",
            C::TimeOfDay(TimeWindow {
                timezone: Tz::Europe__Paris,
                after: Some(32_400),
                before: Some(63_015),
            }),
        ),
        (
            "time_of_day: {after: '22:00', timezone: UTC, before: '06:00'}",
            C::TimeOfDay(TimeWindow {
                timezone: Tz::UTC,
                after: Some(79_200),
                before: Some(21_600),
            }),
        ),
        (
            "time_of_day: {timezone: America/New_York, before: '12:00'}",
            C::TimeOfDay(TimeWindow {
                timezone: Tz::America__New_York,
                after: None,
                before: Some(43_200),
            }),
        ),
    ];
    for (cond, want) in cases {
        assert_eq!(criterion(cond), Ok(want), "{cond}");
    }
}

#[test]
fn criterion_problems_have_exact_paths_and_messages() {
    let any_string = "a string or a map of is/starts_with/ends_with/contains/in/not_in";
    let cases: Vec<(&str, Vec<String>)> = vec![
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
            "claim: x",
            vec![s("claim: `claim` needs a claim name: `claim/<name>`")],
        ),
        (
            "claim/: x",
            vec![s("claim/: `claim` needs a claim name: `claim/<name>`")],
        ),
        (
            "claim/a..b: x",
            vec![s("claim/a..b: the claim path has an empty segment")],
        ),
        (
            "claim/a/: x",
            vec![s("claim/a/: the claim path has an empty segment")],
        ),
        (
            "claim/a/b/c/d/e/f: x",
            vec![s(
                "claim/a/b/c/d/e/f: the claim path is nested more than 5 levels",
            )],
        ),
        (
            "claim/a.b.c.d.e.f: {hass: x}",
            vec![
                s("claim/a.b.c.d.e.f: the claim path is nested more than 5 levels"),
                s("claim/a.b.c.d.e.f.hass: unknown key; did you mean `has`?"),
            ],
        ),
        (
            "email: {starts_wth: a}",
            vec![s(
                "email.starts_wth: unknown key; did you mean `starts_with`?",
            )],
        ),
        (
            "email: {starts_with: [a]}",
            vec![s("email.starts_with: expected a string, found a list")],
        ),
        (
            "email: {ends_with: ~}",
            vec![s("email.ends_with: expected a string, found nothing")],
        ),
        (
            "email: {in: a}",
            vec![s("email.in: expected a list of strings, found a string")],
        ),
        ("email: {in: []}", vec![s("email.in: empty list")]),
        (
            "email: {not_in: [a, [b], {c: d}]}",
            vec![
                s("email.not_in[1]: expected a string, found a list"),
                s("email.not_in[2]: expected a string, found a map"),
            ],
        ),
        (
            "email: {}",
            vec![format!("email: empty map; expected {any_string}")],
        ),
        (
            "email: [a]",
            vec![format!("email: expected {any_string}, found a list")],
        ),
        (
            "user: ~",
            vec![format!("user: expected {any_string}, found nothing")],
        ),
        ("email: {is: ''}", vec![s("email.is: empty string")]),
        ("email: ''", vec![s("email: empty string")]),
        (
            "http_path: {is: /a, bogus: 1, contains: {x: 1}}",
            vec![
                s("http_path.bogus: unknown key"),
                s("http_path.contains: expected a string, found a map"),
            ],
        ),
        (
            "groups: {hass: a}",
            vec![s("groups.hass: unknown key; did you mean `has`?")],
        ),
        (
            "groups: {has: [a]}",
            vec![s("groups.has: expected a string, found a list")],
        ),
        (
            "groups: [a]",
            vec![s(
                "groups: expected a string or a map of has/is/exclude, found a list",
            )],
        ),
        (
            "claim/x: {}",
            vec![s(
                "claim/x: empty map; expected a string or a map of has/is/exclude",
            )],
        ),
        (
            "source_ip: 10.0.0.300",
            vec![s("source_ip: \"10.0.0.300\" is not an IP address or CIDR")],
        ),
        (
            "source_ip: [10.0.0.1, nope, {a: b}, 10.0.0.0/33]",
            vec![
                s("source_ip[1]: \"nope\" is not an IP address or CIDR"),
                s("source_ip[2]: expected a string, found a map"),
                s("source_ip[3]: \"10.0.0.0/33\" is not an IP address or CIDR"),
            ],
        ),
        ("source_ip: []", vec![s("source_ip: empty list")]),
        (
            "source_ip: {a: b}",
            vec![s(
                "source_ip: expected an IP address or CIDR, or a list of them, found a map",
            )],
        ),
        (
            "date: {after: yesterday}",
            vec![s(
                "date.after: \"yesterday\" is not an RFC 3339 timestamp (2024-05-01T09:00:00Z) or a date (2024-05-01)",
            )],
        ),
        (
            "date: {before: [x]}",
            vec![s("date.before: expected a string, found a list")],
        ),
        (
            "date: {}",
            vec![s(
                "date: empty map; expected a map with `after` and/or `before`",
            )],
        ),
        (
            "date: '2024-01-01'",
            vec![s(
                "date: expected a map with `after` and/or `before`, found a string",
            )],
        ),
        (
            "date: {aftr: '2024-01-01'}",
            vec![s("date.aftr: unknown key; did you mean `after`?")],
        ),
        (
            "date: {after: '2024-02-01', before: '2024-01-01'}",
            vec![s("date: `after` must be earlier than `before`")],
        ),
        (
            "date: {after: '2024-01-01', before: '2024-01-01T00:00:00Z'}",
            vec![s("date: `after` must be earlier than `before`")],
        ),
        (
            "day_of_week: funday",
            vec![s(
                "day_of_week: \"funday\" is not a day (mon … sun), a range (mon-fri) or `*`",
            )],
        ),
        (
            "day_of_week: 'mon,,mo-fr'",
            vec![
                s("day_of_week: \"\" is not a day (mon … sun), a range (mon-fri) or `*`"),
                s("day_of_week: \"mo-fr\" is not a day (mon … sun), a range (mon-fri) or `*`"),
            ],
        ),
        (
            "day_of_week: [mon]",
            vec![s(
                "day_of_week: expected a string of days (mon-fri) or a map with `days` and `timezone`, found a list",
            )],
        ),
        (
            "day_of_week: {days: mon, timezone: Mars/Olympus}",
            vec![s(
                "day_of_week.timezone: \"Mars/Olympus\" is not an IANA timezone such as `Europe/Berlin`, `America/New_York` or `UTC`",
            )],
        ),
        (
            "day_of_week: {timezone: UTC}",
            vec![s("day_of_week: missing required key `days`")],
        ),
        (
            "day_of_week: {days: funday, tz: UTC}",
            vec![
                s(
                    "day_of_week.days: \"funday\" is not a day (mon … sun), a range (mon-fri) or `*`",
                ),
                s("day_of_week.tz: unknown key"),
            ],
        ),
        (
            "time_of_day: {timezone: Europe/Berln, after: '09:00'}",
            vec![s(
                "time_of_day.timezone: \"Europe/Berln\" is not an IANA timezone; did you mean `Europe/Berlin`?",
            )],
        ),
        (
            "time_of_day: {timezone: europe/paris, after: '09:00'}",
            vec![s(
                "time_of_day.timezone: \"europe/paris\" is not an IANA timezone; did you mean `Europe/Paris`?",
            )],
        ),
        (
            "time_of_day: {timezone: CEST, after: '09:00'}",
            vec![s(
                "time_of_day.timezone: \"CEST\" is not an IANA timezone; did you mean `CET`?",
            )],
        ),
        (
            "time_of_day: {after: '09:00'}",
            vec![s("time_of_day: missing required key `timezone`")],
        ),
        (
            "time_of_day: {timezone: UTC}",
            vec![s("time_of_day: needs `after` and/or `before`")],
        ),
        (
            "time_of_day: {timezone: '', after: '09:00'}",
            vec![s("time_of_day.timezone: empty string")],
        ),
        (
            "time_of_day: {timezone: UTC, after: '9:00', before: '24:00'}",
            vec![
                s("time_of_day.after: \"9:00\" is not a time of day (HH:MM or HH:MM:SS)"),
                s("time_of_day.before: \"24:00\" is not a time of day (HH:MM or HH:MM:SS)"),
            ],
        ),
        (
            "time_of_day: {timezone: UTC, afer: '10:00'}",
            vec![s("time_of_day.afer: unknown key; did you mean `after`?")],
        ),
        (
            "time_of_day: {timezone: UTC, after: '10:00', before: '10:00'}",
            vec![s("time_of_day: `after` and `before` are equal")],
        ),
        (
            "time_of_day: '09:00'",
            vec![s(
                "time_of_day: expected a map with `after` and/or `before`, found a string",
            )],
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
    ];
    for (cond, want) in cases {
        let want: Vec<String> = want
            .into_iter()
            .map(|w| match w.strip_prefix(':') {
                Some(rest) => format!("policy.allow.and[0]:{rest}"),
                None => format!("policy.allow.and[0].{w}"),
            })
            .collect();
        assert_eq!(criterion(cond), Err(want), "{cond}");
    }
}

#[test]
fn ignored_data_is_accepted_but_false_warns() {
    let (policy, errors, warnings) = parse_node(&wrap("authenticated_user: false"));
    assert!(errors.is_empty());
    assert_eq!(
        policy.map(|p| p.rules[0].body.ops[0].1.clone()),
        Some(vec![crit(Criterion::AuthenticatedUser)])
    );
    assert_eq!(
        warnings,
        [
            "policy.allow.and[0].authenticated_user: the value of `authenticated_user` is ignored; `false` does not negate it"
        ]
    );
    let (_, _, warnings) = parse_node(&wrap("accept: true"));
    assert!(warnings.is_empty());
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
fn reference_examples_parse() {
    let examples = [
        "allow:\n  and:\n    - claim/groups: Engineering\ndeny:\n  or:\n    - email: { ends_with: \"@contractor.example.com\" }",
        "- allow:\n    and:\n      - domain: { is: example.com }\n      - http_method: { in: [GET, HEAD] }\n- allow:\n    or:\n      - groups: { has: \"00g1abcdEFGH\" }",
        "allow:\n  or:\n    - http_path: { is: /healthz }\n    - authenticated_user: true\ndeny:\n  and:\n    - user: { is: \"00u9zzzzBADUSER\" }",
    ];
    let rule_counts: Vec<usize> = examples.iter().map(|e| ok(e).rules.len()).collect();
    assert_eq!(rule_counts, [2, 2, 2]);
}

#[test]
fn criteria_render_as_ppl_text() {
    let cases = [
        ("accept: 1", "accept"),
        ("cors_preflight: true", "cors_preflight"),
        ("authenticated_user: true", "authenticated_user"),
        (
            "email: {ends_with: '@Example.com'}",
            "email ends_with \"@example.com\"",
        ),
        ("domain: Example.com", "domain is \"example.com\""),
        ("user: {contains: x}", "user contains \"x\""),
        (
            "http_method: {in: [get, post]}",
            "http_method in [\"GET\", \"POST\"]",
        ),
        (
            "http_path: {starts_with: /a, not_in: [/a/b]}",
            "http_path starts_with \"/a\" and not_in [\"/a/b\"]",
        ),
        (
            "claim/org.team: {has: x, exclude: y}",
            "claim/org/team has \"x\" and exclude \"y\"",
        ),
        ("groups: {is: admins}", "groups is \"admins\""),
        (
            "source_ip: [10.0.0.1, 10.1.0.0/16]",
            "source_ip in [10.0.0.1/32, 10.1.0.0/16]",
        ),
        (
            "date: {after: '2024-01-01', before: '2025-01-01T00:00:00Z'}",
            "date after \"2024-01-01\" and before \"2025-01-01T00:00:00Z\"",
        ),
        ("date: {before: '2025-01-01'}", "date before \"2025-01-01\""),
        ("day_of_week: fri-mon", "day_of_week mon,fri,sat,sun"),
        ("day_of_week: mon-sun", "day_of_week *"),
        (
            "day_of_week: {days: mon-fri, timezone: Asia/Tokyo}",
            "day_of_week mon,tue,wed,thu,fri in \"Asia/Tokyo\"",
        ),
        (
            "time_of_day: {timezone: Europe/Paris, after: '09:00', before: '17:30:15'}",
            "time_of_day after 09:00 and before 17:30:15 in \"Europe/Paris\"",
        ),
    ];
    for (cond, want) in cases {
        assert_eq!(
            criterion(cond).map(|c| c.to_string()),
            Ok(want.to_owned()),
            "{cond}"
        );
    }
    assert_eq!(
        (Action::Allow.to_string(), Action::Deny.to_string()),
        (s("allow"), s("deny"))
    );
    let ops = [Operator::And, Operator::Or, Operator::Not, Operator::Nor].map(|o| o.to_string());
    assert_eq!(ops, ["and", "or", "not", "nor"]);
}

#[test]
fn timestamps_are_validated_and_converted() {
    let good = [
        ("1970-01-01", 0, 0),
        ("1970-01-01T00:00:00Z", 0, 0),
        ("1969-12-31T23:59:59Z", -1, 0),
        ("2024-02-29", 1_709_164_800, 0),
        ("2000-03-01T01:02:03+01:00", 951_868_923, 0),
        ("1900-03-01T00:00:00-05:30", -2_203_871_400, 0),
        (
            "2024-01-01t00:00:00.123456789123z",
            1_704_067_200,
            123_456_789,
        ),
        ("2024-01-01T00:00:00.01Z", 1_704_067_200, 10_000_000),
    ];
    for (text, secs, nanos) in good {
        assert_eq!(parse_timestamp(text), Some(ts(text, secs, nanos)), "{text}");
    }
    let bad = [
        "",
        "2024-02-30",
        "2023-02-29",
        "2024-13-01",
        "2024-00-10",
        "2024-01-00",
        "2024-1-01",
        "2024/01/01",
        "2024-01-01T",
        "2024-01-01Z",
        "2024-01-01T10:00:00",
        "2024-01-01T24:00:00Z",
        "2024-01-01T10:60:00Z",
        "2024-01-01T10:00:60Z",
        "2024-01-01T10:00:00.Z",
        "2024-01-01T10:00:00+0100",
        "2024-01-01T10:00:00+24:00",
        "2024-01-01 10:00:00Z",
        "2024-01-01T10:00:00Zjunk",
        "2024-01-01T10:00Z",
        "２０２４-01-01",
        "2024-01-01é",
    ];
    for text in bad {
        assert_eq!(parse_timestamp(text), None, "{text}");
    }
}

#[test]
fn clock_times_are_validated_and_converted() {
    for (text, secs) in [
        ("00:00", 0),
        ("23:59:59", 86_399),
        ("09:30", 34_200),
        ("12:00:01", 43_201),
    ] {
        assert_eq!(parse_clock(text), Some(secs), "{text}");
    }
    for text in [
        "",
        "9:30",
        "24:00",
        "12:60",
        "12:00:60",
        "12:00:",
        "12-00",
        "12:00:00:00",
        "ab:cd",
        "12:0é",
    ] {
        assert_eq!(parse_clock(text), None, "{text}");
    }
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
