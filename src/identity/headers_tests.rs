// Test-only: included from its parent module under #[cfg(test)].
use serde_json::json;

use super::*;
use crate::identity::test_support::session;

fn text(v: serde_json::Value) -> Option<String> {
    claim_header_value(&v).map(|h| h.to_str().unwrap().to_owned())
}

#[test]
fn values_are_written_as_pomerium_writes_them() {
    assert_eq!(
        text(json!("ada@example.com")).as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(text(json!(42)).as_deref(), Some("42"));
    assert_eq!(text(json!(1.5)).as_deref(), Some("1.5"));
    assert_eq!(text(json!(true)).as_deref(), Some("true"));
    assert_eq!(
        text(json!(["a", "b c", 3, false])).as_deref(),
        Some("a,b c,3,false")
    );
    assert_eq!(text(json!(["a", null, "b"])).as_deref(), Some("a,b"));
    assert_eq!(text(json!([])).as_deref(), Some(""));
    assert_eq!(text(json!({"k": "v"})).as_deref(), Some(r#"{"k":"v"}"#));
    assert_eq!(text(json!(null)), None);
    // Non-ASCII text passes through as its UTF-8 bytes.
    let v = claim_header_value(&json!("Zoë")).unwrap();
    assert_eq!(v.as_bytes(), "Zoë".as_bytes());
}

#[test]
fn cr_lf_nul_and_other_controls_are_never_emitted() {
    for bad in [
        json!("a\r\nX-Injected: 1"),
        json!("line\nbreak"),
        json!("carriage\rreturn"),
        json!("nul\0byte"),
        json!("bell\u{7}"),
        json!(["ok", "not\nok"]),
    ] {
        assert_eq!(claim_header_value(&bad), None, "{bad}");
    }
    // Nested inside an object, JSON escapes them: no raw control byte is emitted.
    let escaped = claim_header_value(&json!({"k": "a\nb"})).unwrap();
    assert!(!escaped.as_bytes().iter().any(|b| b.is_ascii_control()));
    // A tab is a legal header character.
    assert_eq!(text(json!("a\tb")).as_deref(), Some("a\tb"));
}

#[test]
fn claims_come_from_the_session_and_its_idp_claims() {
    let s = session(1000);
    let groups = vec!["filtered".to_owned()];
    let of = |name: &str| claim_of(&s, &groups, name);
    assert_eq!(of("email"), Some(json!("ada@example.com")));
    assert_eq!(of("name"), Some(json!("Ada Lovelace")));
    assert_eq!(of("sub"), Some(json!("00u1")));
    assert_eq!(of("user"), Some(json!("00u1")));
    assert_eq!(
        of("groups"),
        Some(json!(["filtered"])),
        "the filtered groups"
    );
    assert_eq!(of("sid"), Some(json!("sess-1")));
    assert_eq!(of("locale"), Some(json!("en")));
    assert_eq!(of("level"), Some(json!(3)));
    assert_eq!(of("address.country"), Some(json!("UK")));
    assert_eq!(of("address/city"), Some(json!("London")));
    assert_eq!(
        of("address"),
        Some(json!({"country": "UK", "city": "London"}))
    );
    assert_eq!(
        of("https://example.com/roles"),
        Some(json!(["admin", "dev"]))
    );
    assert_eq!(of("address.zip"), None);
    assert_eq!(of("locale.x"), None);
    assert_eq!(of("nope"), None);

    let mut anonymous = session(1000);
    anonymous.email = None;
    anonymous.name = None;
    assert_eq!(claim_of(&anonymous, &[], "email"), None);
    assert_eq!(claim_of(&anonymous, &[], "name"), None);
    assert_eq!(claim_of(&anonymous, &[], "groups"), Some(json!([])));
}

#[test]
fn nested_lookup_prefers_the_whole_key_then_the_longest_head() {
    let mut s = session(1000);
    s.claims = serde_json::from_value(json!({
        "a.b": "whole",
        "a": { "b": "nested", "c": { "d": 1 } },
        "x.y": { "z": "dotted head" },
    }))
    .unwrap();
    assert_eq!(claim_of(&s, &[], "a.b"), Some(json!("whole")));
    assert_eq!(claim_of(&s, &[], "a.c.d"), Some(json!(1)));
    assert_eq!(claim_of(&s, &[], "a/c/d"), Some(json!(1)));
    assert_eq!(claim_of(&s, &[], "x.y.z"), Some(json!("dotted head")));
}
