//! Tests for evaluating each criterion with each of its matchers: true, false, or unknown
//! (sign in) for an anonymous request when the criterion is about the user.

use super::*;

type Tweak = fn(&mut Case);

fn same(_: &mut Case) {}
fn anonymous(c: &mut Case) {
    c.user = None;
}

#[test]
fn every_criterion_and_matcher() {
    let rows: Vec<(&str, Tweak, Outcome)> = vec![
        ("accept: true", anonymous, Allow),
        ("reject: true", same, Deny),
        ("authenticated_user: true", same, Allow),
        ("authenticated_user: true", anonymous, SignIn),
        (
            "authenticated_user: true",
            |c| c.user = Some(session("", None, &[], json!({}))),
            Deny,
        ),
        ("cors_preflight: true", same, Deny),
        ("cors_preflight: true", |c| c.cors = true, Allow),
        (
            "cors_preflight: true",
            |c| (c.cors, c.user) = (true, None),
            Allow,
        ),
        // user: exact case.
        ("user: 00u1", same, Allow),
        ("user: 00U1", same, Deny),
        ("user: 00u1", anonymous, SignIn),
        ("user: {starts_with: 00u}", same, Allow),
        ("user: {ends_with: '1'}", same, Allow),
        ("user: {contains: u1}", same, Allow),
        ("user: {in: [a, 00u1]}", same, Allow),
        ("user: {not_in: [00u1]}", same, Deny),
        ("user: {not_in: [x]}", same, Allow),
        ("user: {not_in: [x]}", anonymous, SignIn),
        ("user: {starts_with: '00', ends_with: '2'}", same, Deny),
        // email: case-insensitive.
        ("email: alice@example.com", same, Allow),
        ("email: bob@example.com", same, Deny),
        ("email: {ends_with: '@EXAMPLE.com'}", same, Allow),
        ("email: {starts_with: ALICE}", same, Allow),
        ("email: {contains: 'E@EX'}", same, Allow),
        ("email: {in: [bob@x.org, ALICE@example.com]}", same, Allow),
        ("email: {not_in: [alice@example.com]}", same, Deny),
        ("email: {not_in: [bob@x.org]}", same, Allow),
        ("email: {not_in: [bob@x.org]}", anonymous, SignIn),
        ("email: {starts_with: alice, ends_with: '.org'}", same, Deny),
        // domain: the part after `@`, case-insensitive.
        ("domain: example.com", same, Allow),
        ("domain: EXAMPLE.COM", same, Allow),
        ("domain: other.com", same, Deny),
        ("domain: {ends_with: .com}", same, Allow),
        ("domain: {starts_with: Exam}", same, Allow),
        ("domain: {contains: ampl}", same, Allow),
        ("domain: {contains: alice}", same, Deny),
        ("domain: {in: [a.org, example.com]}", same, Allow),
        ("domain: {not_in: [example.com]}", same, Deny),
        ("domain: example.com", anonymous, SignIn),
        // http_method, http_path: exact.
        ("http_method: GET", same, Allow),
        ("http_method: get", same, Allow),
        ("http_method: POST", same, Deny),
        ("http_method: {in: [GET, HEAD]}", same, Allow),
        (
            "http_method: {in: [GET, HEAD]}",
            |c| c.method = Method::POST,
            Deny,
        ),
        ("http_method: {not_in: [GET]}", same, Deny),
        (
            "http_method: {starts_with: G, ends_with: T, contains: E}",
            same,
            Allow,
        ),
        ("http_method: GET", anonymous, Allow),
        ("http_path: /api/items", same, Allow),
        ("http_path: /API/items", same, Deny),
        ("http_path: {starts_with: /api/}", same, Allow),
        ("http_path: {ends_with: /items}", same, Allow),
        ("http_path: {contains: pi/it}", same, Allow),
        ("http_path: {in: [/healthz, /api/items]}", same, Allow),
        ("http_path: {not_in: [/api/items]}", same, Deny),
        // groups: sorted session groups.
        ("groups: engineering", same, Allow),
        ("groups: {has: Engineering}", same, Deny),
        ("groups: {has: nope}", same, Deny),
        ("groups: {is: engineering}", same, Deny),
        (
            "groups: {is: solo}",
            |c| c.user = Some(session("u", None, &["solo"], json!({}))),
            Allow,
        ),
        ("groups: {exclude: contractors}", same, Allow),
        ("groups: {exclude: admins}", same, Deny),
        ("groups: {has: admins, exclude: contractors}", same, Allow),
        (
            "groups: {exclude: x}",
            |c| c.user = Some(session("u", None, &[], json!({}))),
            Allow,
        ),
        ("groups: {exclude: x}", anonymous, SignIn),
        // claim/<path>: strings, numbers, booleans, arrays of them; missing = empty list.
        ("claim/groups: eng", same, Allow),
        ("claim/groups: {has: ops}", same, Allow),
        ("claim/groups: {has: dev}", same, Deny),
        ("claim/groups: {is: eng}", same, Deny),
        ("claim/groups: {exclude: dev}", same, Allow),
        ("claim/groups: {exclude: eng}", same, Deny),
        ("claim/single: {is: x}", same, Allow),
        ("claim/org/team/name: core", same, Allow),
        ("claim/org.team.name: {is: core}", same, Allow),
        ("claim/org.team: core", same, Deny),
        ("claim/level: 3", same, Allow),
        ("claim/level: {is: '3'}", same, Allow),
        ("claim/ratio: '1.5'", same, Allow),
        ("claim/verified: true", same, Allow),
        ("claim/verified: 'false'", same, Deny),
        ("claim/nothing: {exclude: x}", same, Allow),
        ("claim/missing: {exclude: x}", same, Allow),
        ("claim/missing: x", same, Deny),
        ("claim/missing.deeper: x", same, Deny),
        ("claim/level.x: '3'", same, Deny),
        ("claim/mixed: {has: '1'}", same, Allow),
        ("claim/mixed: {has: 'true'}", same, Allow),
        ("claim/mixed: {has: '2'}", same, Deny),
        ("claim/mixed: {is: a}", same, Deny),
        ("claim/groups: eng", anonymous, SignIn),
        // source_ip: IPv4-mapped IPv6 counts as IPv4, both ways.
        ("source_ip: 10.0.0.0/8", same, Allow),
        ("source_ip: [192.168.0.0/16, 10.1.2.3]", same, Allow),
        ("source_ip: 192.168.0.0/16", same, Deny),
        (
            "source_ip: 10.0.0.0/8",
            |c| c.ip = "::ffff:10.1.2.3".parse().unwrap(),
            Allow,
        ),
        ("source_ip: '::ffff:10.0.0.0/104'", same, Allow),
        (
            "source_ip: '2001:db8::/32'",
            |c| c.ip = "2001:db8::1".parse().unwrap(),
            Allow,
        ),
        (
            "source_ip: 10.0.0.0/8",
            |c| c.ip = "2001:db8::1".parse().unwrap(),
            Deny,
        ),
        ("source_ip: 10.0.0.0/8", anonymous, Allow),
        // date: exclusive bounds.
        ("date: {after: '2024-05-15T10:29:59Z'}", same, Allow),
        ("date: {after: '2024-05-15T10:30:00Z'}", same, Deny),
        ("date: {after: '2024-05-15T10:29:59.5Z'}", same, Allow),
        ("date: {before: '2024-05-15T10:30:00Z'}", same, Deny),
        ("date: {before: '2024-05-15T10:30:00.5Z'}", same, Allow),
        (
            "date: {after: '2024-01-01', before: '2025-01-01'}",
            same,
            Allow,
        ),
        ("date: {after: '2025-01-01'}", same, Deny),
        // day_of_week: UTC unless a timezone is given.
        ("day_of_week: wed", same, Allow),
        ("day_of_week: thu", same, Deny),
        ("day_of_week: mon-fri", same, Allow),
        ("day_of_week: sat-sun", same, Deny),
        ("day_of_week: '*'", same, Allow),
        ("day_of_week: {days: wed}", same, Allow),
        (
            "day_of_week: {days: thu, timezone: Pacific/Kiritimati}",
            same,
            Allow,
        ),
        (
            "day_of_week: {days: wed, timezone: Pacific/Kiritimati}",
            same,
            Deny,
        ),
        (
            "day_of_week: {days: tue, timezone: Pacific/Pago_Pago}",
            same,
            Allow,
        ),
        (
            "day_of_week: {days: wed, timezone: Pacific/Pago_Pago}",
            same,
            Deny,
        ),
        // time_of_day: [after, before) in the zone, wrapping past midnight.
        (
            "time_of_day: {timezone: UTC, after: '10:00', before: '11:00'}",
            same,
            Allow,
        ),
        (
            "time_of_day: {timezone: UTC, after: '10:30', before: '11:00'}",
            same,
            Allow,
        ),
        (
            "time_of_day: {timezone: UTC, after: '09:00', before: '10:30'}",
            same,
            Deny,
        ),
        ("time_of_day: {timezone: UTC, after: '10:31'}", same, Deny),
        (
            "time_of_day: {timezone: Europe/Berlin, after: '12:00', before: '13:00'}",
            same,
            Allow,
        ),
        (
            "time_of_day: {timezone: Europe/Berlin, after: '10:00', before: '12:00'}",
            same,
            Deny,
        ),
        (
            "time_of_day: {timezone: Europe/Berlin, after: '11:00', before: '12:00'}",
            |c| c.now = at("2024-01-15T10:30:00Z"),
            Allow,
        ),
        (
            "time_of_day: {timezone: America/New_York, before: '07:00'}",
            same,
            Allow,
        ),
        (
            "time_of_day: {timezone: UTC, after: '22:00', before: '11:00'}",
            same,
            Allow,
        ),
        (
            "time_of_day: {timezone: UTC, after: '22:00', before: '06:00'}",
            same,
            Deny,
        ),
        (
            "time_of_day: {timezone: UTC, after: '22:00', before: '06:00'}",
            |c| c.now = at("2024-05-15T23:00:00Z"),
            Allow,
        ),
    ];
    for (cond, tweak, want) in rows {
        let mut case = Case::standard();
        tweak(&mut case);
        let got = case.decide(&one(cond)).outcome;
        assert_eq!(got, want, "{cond}");
    }
}
