//! Parser tests for `groups`: a group name or a map of `has`/`is`/`exclude`.

use super::*;

#[test]
fn groups_parse_into_typed_data() {
    use Criterion as C;
    assert_parses(vec![
        ("groups: Admins", C::Groups(has("Admins"))),
        (
            "groups: {has: a, is: b, exclude: c}",
            C::Groups(lm(vec![
                ListCheck::Has(s("a")),
                ListCheck::Is(s("b")),
                ListCheck::Exclude(s("c")),
            ])),
        ),
    ]);
}

#[test]
fn groups_problems_have_exact_paths_and_messages() {
    assert_problems(vec![
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
    ]);
}

#[test]
fn groups_render_as_ppl_text() {
    assert_renders(&[("groups: {is: admins}", "groups is \"admins\"")]);
}
