//! Parser tests for `claim/<path>`: the claim path (nested up to five levels, `.` or `/`)
//! and its list matcher.

use super::*;

#[test]
fn claims_parse_into_typed_data() {
    use Criterion as C;
    assert_parses(vec![
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
    ]);
}

#[test]
fn claims_problems_have_exact_paths_and_messages() {
    assert_problems(vec![
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
            "claim/x: {}",
            vec![s(
                "claim/x: empty map; expected a string or a map of has/is/exclude",
            )],
        ),
    ]);
}

#[test]
fn claims_render_as_ppl_text() {
    assert_renders(&[(
        "claim/org.team: {has: x, exclude: y}",
        "claim/org/team has \"x\" and exclude \"y\"",
    )]);
}
