//! Parser tests for the criteria about who the user is: `authenticated_user`, `user`,
//! `email` and `domain` (the last two case-folded at parse), and the string-matcher problems
//! they share.

use super::*;

#[test]
fn user_criteria_parse_into_typed_data() {
    use Criterion as C;
    use StringCheck as S;
    assert_parses(vec![
        ("authenticated_user: true", C::AuthenticatedUser),
        ("authenticated_user: ~", C::AuthenticatedUser),
        ("authenticated_user: {anything: [1]}", C::AuthenticatedUser),
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
    ]);
}

#[test]
fn user_criteria_problems_have_exact_paths_and_messages() {
    let any_string = "a string or a map of is/starts_with/ends_with/contains/in/not_in";
    assert_problems(vec![
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
    ]);
}

#[test]
fn user_criteria_render_as_ppl_text() {
    assert_renders(&[
        ("authenticated_user: true", "authenticated_user"),
        (
            "email: {ends_with: '@Example.com'}",
            "email ends_with \"@example.com\"",
        ),
        ("domain: Example.com", "domain is \"example.com\""),
        ("user: {contains: x}", "user contains \"x\""),
    ]);
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
