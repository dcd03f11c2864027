//! Property tests of the YAML and policy readers: any text is read or refused without
//! panicking; a policy is returned exactly when no problem was found, and it compiles
//! without panicking.

use proptest::prelude::*;

use super::*;
use crate::config::yaml;

/// Policy-shaped YAML from the language's own words, nested a few levels.
fn policy_yaml() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("allow"),
        Just("deny"),
        Just("and"),
        Just("or"),
        Just("not"),
        Just("nor"),
        Just("groups"),
        Just("email"),
        Just("domain"),
        Just("user"),
        Just("http_path"),
        Just("http_method"),
        Just("claim/org/team"),
        Just("source_ip"),
        Just("date"),
        Just("day_of_week"),
        Just("time_of_day"),
        Just("timezone"),
        Just("accept"),
        Just("reject"),
        Just("authenticated_user"),
        Just("has"),
        Just("is"),
        Just("starts_with"),
        Just("in"),
        Just("not_in"),
        Just("exclude"),
        Just("after"),
        Just("before"),
        Just("cors_preflight"),
        Just("none_of"),
        Just("unknown"),
    ];
    let scalar = prop_oneof![
        Just("true".to_owned()),
        Just("1".to_owned()),
        Just("admins".to_owned()),
        Just("10.0.0.0/8".to_owned()),
        Just("mon-fri".to_owned()),
        Just("9:00".to_owned()),
        Just("2024-01-01T00:00:00Z".to_owned()),
        Just("Europe/Paris".to_owned()),
        Just("'@example.com'".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("null".to_owned()),
        "[a-z]{1,5}",
    ];
    let leaf = scalar.prop_map(|s| s);
    leaf.prop_recursive(4, 32, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..4)
                .prop_map(|items| format!("[{}]", items.join(", "))),
            proptest::collection::vec((word.clone(), inner), 1..4).prop_map(|pairs| {
                let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", body.join(", "))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_is_read_or_refused(text in any::<String>(), path in "[a-z0-9_.\\[\\]]{0,20}") {
        let _ = yaml::parse(&text);
        if let Some(line) = yaml::locate(&text, &path) {
            prop_assert!(line >= 1 && line <= text.lines().count().max(1), "{line}");
        }
    }

    #[test]
    fn a_policy_is_returned_exactly_when_nothing_is_wrong(text in policy_yaml()) {
        let Ok(node) = yaml::parse(&text) else { return Ok(()) };
        let mut problems = Problems::new();
        let policy = parse_policy(&node, "policy", &mut problems);
        prop_assert_eq!(policy.is_none(), !problems.errors().is_empty(), "{}", text);
        if let Some(policy) = policy {
            let compiled = CompiledPolicy::compile(&Access {
                policy: Some(policy),
                ..Access::default()
            });
            let _ = compiled.can_never_allow();
            let _ = compiled.needs_user();
        }
    }
}
