//! Parser tests for the request criteria `http_method` (upper-cased at parse) and
//! `http_path` (exact).

use super::*;

#[test]
fn http_criteria_parse_into_typed_data() {
    use Criterion as C;
    use StringCheck as S;
    assert_parses(vec![
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
    ]);
}

#[test]
fn http_criteria_problems_have_exact_paths_and_messages() {
    assert_problems(vec![(
        "http_path: {is: /a, bogus: 1, contains: {x: 1}}",
        vec![
            s("http_path.bogus: unknown key"),
            s("http_path.contains: expected a string, found a map"),
        ],
    )]);
}

#[test]
fn http_criteria_render_as_ppl_text() {
    assert_renders(&[
        (
            "http_method: {in: [get, post]}",
            "http_method in [\"GET\", \"POST\"]",
        ),
        (
            "http_path: {starts_with: /a, not_in: [/a/b]}",
            "http_path starts_with \"/a\" and not_in [\"/a/b\"]",
        ),
    ]);
}
