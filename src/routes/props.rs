//! Property tests of the canonical request view: path normalisation and the client
//! address taken from `X-Forwarded-For`. Whatever the input, nothing panics, and what is
//! accepted has the documented form.

use std::net::{IpAddr, SocketAddr};

use http::Request;
use proptest::prelude::*;

use super::{normalize, request};

/// Paths built from the pieces that make routers and upstreams disagree.
fn path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just(";".to_owned()),
        Just("%2e".to_owned()),
        Just("%2F".to_owned()),
        Just("%23".to_owned()),
        Just("%3f".to_owned()),
        Just("%C0%AE".to_owned()),
        Just("%C3%A9".to_owned()),
        Just("é".to_owned()),
        Just("%".to_owned()),
        Just("\\".to_owned()),
        "[a-zA-Z0-9~_=-]{1,3}",
        "%[0-9A-Fa-f]{2}",
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|parts| format!("/{}", parts.concat()))
}

fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'A'..=b'F' => b - b'A' + 10,
        _ => panic!("not an upper-case hex digit: {b}"),
    }
}

/// The documented form of a normalised path.
fn assert_canonical(out: &str) {
    assert!(out.starts_with('/'), "{out}");
    assert!(!out.contains("//"), "{out}");
    assert!(!out.contains(['\\', '#', '\0']), "{out}");
    let bytes = out.as_bytes();
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let c = hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]);
            assert!(
                !c.is_ascii_alphanumeric() && !b"-._~/\\#?\0".contains(&c),
                "{out}: %{c:02X} should be decoded or refused"
            );
            decoded.push(c);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    assert!(std::str::from_utf8(&decoded).is_ok(), "{out}");
    for segment in out.split('/').skip(1) {
        let name = segment.split(';').next().unwrap_or("");
        assert!(segment != "." && segment != "..", "{out}");
        assert!(
            !(segment.contains(';') && matches!(name, "" | "." | "..")),
            "{out}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn normalised_paths_are_canonical_and_stable(raw in path()) {
        if let Ok(out) = normalize::path(&raw) {
            assert_canonical(&out);
            prop_assert_eq!(normalize::path(&out).map(|p| p.into_owned()), Ok(out.into_owned()));
        }
    }

    #[test]
    fn any_text_is_refused_or_normalised_without_panicking(raw in any::<String>()) {
        if let Ok(out) = normalize::path(&raw) {
            prop_assert!(out.starts_with('/') && !out.contains("//"));
        }
    }

    #[test]
    fn the_client_address_is_the_peer_or_a_forwarded_one(
        items in proptest::collection::vec(
            prop_oneof![
                "(10|192|203)\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
                "[0-9a-f:]{2,12}",
                "[ -~]{0,8}",
            ],
            0..5,
        ),
        peer_trusted in any::<bool>(),
    ) {
        let xff = items.join(", ");
        let Ok(req) = Request::get("/")
            .header("host", "app.example.com")
            .header("x-forwarded-for", xff.as_str())
            .body(())
        else {
            return Ok(());
        };
        let peer: SocketAddr = if peer_trusted { "10.0.0.1:1" } else { "198.51.100.1:1" }
            .parse()
            .unwrap();
        let nets = ["10.0.0.0/8".parse().unwrap()];
        let view = request::view(&req, true, peer, &nets).unwrap();
        prop_assert_eq!(view.peer_trusted, peer_trusted);
        if !peer_trusted {
            prop_assert_eq!(view.client_ip, peer.ip());
        } else if view.client_ip != peer.ip() {
            let listed = items
                .iter()
                .flat_map(|i| i.split(','))
                .filter_map(|i| i.trim().parse::<IpAddr>().ok())
                .any(|ip| ip == view.client_ip);
            prop_assert!(listed, "{} is not in {xff:?}", view.client_ip);
        }
    }
}
