//! Property tests of what a stranger can send to the sign-in endpoints: the callback's
//! state (query and state cookie), sign-in links and hand-offs. Whatever arrives, opening
//! it never panics and never yields anything we did not seal; what we sealed opens only
//! unchanged, in time, on its host, and in the browser it is bound to.

use std::sync::Arc;

use http::HeaderMap;
use http::header::{COOKIE, HeaderValue};
use proptest::prelude::*;

use super::{Markers, SignIn, SignInError};
use crate::config::env::MapEnv;
use crate::session::{MemoryStore, Sessions};

fn signin() -> SignIn {
    let yaml = "insecure_server: true\nroutes:\n  - {from: http://app.example.com, to: http://127.0.0.1:1, allow_public_unauthenticated_access: true}\n";
    let config = crate::config::load_str(yaml, None, &MapEnv::default())
        .unwrap()
        .config;
    let sessions = Arc::new(Sessions::new(
        &config,
        Arc::new(MemoryStore::new()),
        None,
        None,
    ));
    SignIn::new(&config, &[7; 32], None, sessions, Markers::new(None))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn known(host: &str) -> bool {
    host == "app.example.com"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A callback with any query and any state cookie is refused as a bad or
    /// mismatched state — never accepted, never a panic.
    #[test]
    fn any_callback_state_is_refused(
        query in "[a-z=&%0-9_-]{0,200}",
        state in "[A-Za-z0-9_-]{1,60}",
        value in "[A-Za-z0-9_-]{0,200}",
    ) {
        let s = signin();
        let name = s.sessions.cookies.state_name(&state);
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(&format!("{name}={value}")).unwrap());
        let rt = runtime();
        for q in [query.clone(), format!("state={state}&code=x&{query}")] {
            let result = rt.block_on(s.finish(&q, &headers));
            prop_assert!(
                matches!(result, Err(SignInError::StateMismatch | SignInError::BadCallback(_))),
                "{result:?}"
            );
        }
    }

    /// Any sign-in link or hand-off query that we did not seal is refused.
    #[test]
    fn unsealed_links_and_hand_offs_are_refused(
        value in "[A-Za-z0-9_%=&-]{0,300}",
        binding in proptest::option::of("[A-Za-z0-9_-]{0,40}"),
    ) {
        let s = signin();
        for q in [value.clone(), format!("pomerium_redirect_uri={value}")] {
            prop_assert!(s.open_sign_in_link(&q, &known).is_err());
        }
        let rt = runtime();
        for q in [value.clone(), format!("pomerium_session={value}")] {
            let opened = rt.block_on(s.open_handoff(&q, "app.example.com", binding.as_deref()));
            prop_assert!(opened.is_err());
        }
    }

    /// A sealed hand-off opens once, unchanged, on its host, with its binding; any
    /// one-character change to it, another host or another binding is refused.
    #[test]
    fn a_sealed_hand_off_opens_only_as_minted(
        binding in "[A-Za-z0-9_-]{16,40}",
        other in "[A-Za-z0-9_-]{16,40}",
        at in any::<prop::sample::Index>(),
        with in "[A-Za-z0-9_-]",
    ) {
        let s = signin();
        let url = s.handoff_url("sid", "http://app.example.com/x", &binding).unwrap();
        let query = url.split_once('?').unwrap().1.to_owned();
        let rt = runtime();
        // Tampered: one character replaced.
        let i = "pomerium_session=".len() + at.index(query.len() - "pomerium_session=".len());
        let mut tampered = query.clone();
        tampered.replace_range(i..=i, &with);
        if tampered != query {
            let r = rt.block_on(s.open_handoff(&tampered, "app.example.com", Some(&binding)));
            prop_assert!(r.is_err());
        }
        let r = rt.block_on(s.open_handoff(&query, "other.example.com", Some(&binding)));
        prop_assert!(r.is_err(), "another host");
        if other != binding {
            let r = rt.block_on(s.open_handoff(&query, "app.example.com", Some(&other)));
            prop_assert!(matches!(r, Err(SignInError::OtherBrowser)), "another browser");
        }
        let r = rt.block_on(s.open_handoff(&query, "app.example.com", None));
        prop_assert!(matches!(r, Err(SignInError::OtherBrowser)), "no binding cookie");
        let opened = rt
            .block_on(s.open_handoff(&query, "app.example.com", Some(&binding)))
            .unwrap();
        prop_assert_eq!(opened.session, "sid");
        prop_assert_eq!(opened.return_url, "http://app.example.com/x");
        let again = rt.block_on(s.open_handoff(&query, "app.example.com", Some(&binding)));
        prop_assert!(again.is_err(), "once");
    }
}

#[test]
fn a_sealed_sign_in_link_round_trips() {
    let s = signin();
    let auth = url::Url::parse("http://auth.example.com").unwrap();
    let link = s.sign_in_link(&auth, "http://app.example.com/x?y=1", "bind-1234567890ab");
    let query = link.split_once('?').unwrap().1;
    let (ret, binding) = s.open_sign_in_link(query, &known).unwrap();
    assert_eq!(ret, "http://app.example.com/x?y=1");
    assert_eq!(binding, "bind-1234567890ab");
    let foreign = s.sign_in_link(&auth, "http://evil.example/", "b");
    assert!(
        s.open_sign_in_link(foreign.split_once('?').unwrap().1, &known)
            .is_err(),
        "the return URL must be on a route host"
    );
}
