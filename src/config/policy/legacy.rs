//! The legacy access fields, rewritten at compile time as Pomerium rewrites them: one `allow: or: [...]`
//! rule (`allowed_users` → `user is X` or `email is X`, `allowed_domains` → `domain is X`,
//! `allowed_groups` → `groups has X`, `allowed_idp_claims` → `claim/<name> has X`, …).
//!
//! The claim name of `allowed_idp_claims` is one top-level key, never split on `/` or `.`,
//! so namespaced claims such as `https://example.com/roles` work.

use super::ppl::{Criterion, ListCheck, ListMatcher, StringCheck, StringMatcher};
use crate::config::access::Access;

fn is(value: String) -> StringMatcher {
    StringMatcher {
        checks: vec![StringCheck::Is(value)],
    }
}

fn has(value: String) -> ListMatcher {
    ListMatcher {
        checks: vec![ListCheck::Has(value)],
    }
}

/// The criteria of the legacy allow rule, each with the field it came from, in Pomerium's
/// order. Empty when no field is set. Empty strings in the lists are skipped.
pub(super) fn legacy_criteria(access: &Access) -> Vec<(&'static str, Criterion)> {
    let mut out = Vec::new();
    if access.public {
        out.push(("allow_public_unauthenticated_access", Criterion::Accept));
    }
    if access.any_authenticated_user {
        out.push(("allow_any_authenticated_user", Criterion::AuthenticatedUser));
    }
    for u in access.allowed_users.iter().filter(|u| !u.is_empty()) {
        out.push(("allowed_users", Criterion::User(is(u.clone()))));
        out.push(("allowed_users", Criterion::Email(is(u.to_lowercase()))));
    }
    for d in access.allowed_domains.iter().filter(|d| !d.is_empty()) {
        out.push(("allowed_domains", Criterion::Domain(is(d.to_lowercase()))));
    }
    for g in access.allowed_groups.iter().filter(|g| !g.is_empty()) {
        out.push(("allowed_groups", Criterion::Groups(has(g.clone()))));
    }
    for (claim, values) in &access.allowed_idp_claims {
        for v in values.iter().filter(|v| !v.is_empty()) {
            let path = vec![claim.clone()];
            let matcher = has(v.clone());
            out.push(("allowed_idp_claims", Criterion::Claim { path, matcher }));
        }
    }
    if access.cors_allow_preflight {
        out.push(("cors_allow_preflight", Criterion::CorsPreflight));
    }
    out
}
