//! Parser tests for the criteria about the client: `source_ip` networks and
//! `cors_preflight`.

use super::*;

#[test]
fn client_criteria_parse_into_typed_data() {
    use Criterion as C;
    assert_parses(vec![
        ("cors_preflight: ~", C::CorsPreflight),
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
    ]);
}

#[test]
fn client_criteria_problems_have_exact_paths_and_messages() {
    assert_problems(vec![
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
    ]);
}

#[test]
fn client_criteria_render_as_ppl_text() {
    assert_renders(&[
        ("cors_preflight: true", "cors_preflight"),
        (
            "source_ip: [10.0.0.1, 10.1.0.0/16]",
            "source_ip in [10.0.0.1/32, 10.1.0.0/16]",
        ),
    ]);
}
