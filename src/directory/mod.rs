//! Group membership from the identity provider's directory (Okta).
//!
//! At sign-in the proxy asks the directory for the user's groups — one API request per
//! page of `GET /api/v1/users/{sub}/groups`, never a sweep of the whole directory — and
//! keeps them in a per-user [`GroupCache`]. Requests read the cache without any network
//! I/O; entries older than `idp_refresh_directory_interval` are refreshed in the
//! background for users who are active.
//!
//! Failures never wipe what is known: after a failed refresh the last groups stay usable
//! as [`Membership::Stale`] until `idp_refresh_directory_max_staleness` after the last
//! success, then [`Membership::Unavailable`], and group-gated routes fail closed.
//!
//! * [`GroupSource`]: where groups come from (the seam tests and other providers use);
//! * [`OktaDirectory`]: the Okta Management API client (SSWS token, paging through
//!   `Link` headers, rate-limit pacing, bounded bodies and waits);
//! * [`GroupCache`]: the per-user cache, its staleness rules and background refresh.

mod cache;
mod link;
mod okta;
mod shared;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub(crate) use cache::{GroupCache, Membership};
pub(crate) use okta::OktaDirectory;
pub(crate) use shared::{SharedFuture, SharedGroups, SharedStore};

use crate::config::auth::{Idp, IdpKind};

/// A future returned by a [`GroupSource`].
pub(crate) type GroupsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Group>, DirectoryError>> + Send + 'a>>;

/// Somewhere the groups of a user can be looked up.
pub trait GroupSource: Send + Sync + fmt::Debug {
    /// All groups of one user (Okta user id = the ID token `sub`), every page.
    fn user_groups<'a>(&'a self, user_id: &'a str) -> GroupsFuture<'a>;

    /// The same, but never from a shared cache (the user asked to re-read them).
    fn user_groups_now<'a>(&'a self, user_id: &'a str) -> GroupsFuture<'a> {
        self.user_groups(user_id)
    }
}

/// One group of a user.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Group {
    /// The directory's id of the group (`00g…` in Okta).
    pub id: String,
    /// Its display name (Okta `profile.name`); empty when the directory gave none.
    pub name: String,
}

/// Why groups could not be looked up. No variant ever contains the API token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// 401/403: the API token is wrong, expired or lacks permission (a configuration
    /// error). `summary` is Okta's `errorSummary`.
    #[error("the directory refused the API token (check idp_service_account): {summary}")]
    Unauthorized {
        /// Okta's `errorSummary` (or the HTTP status when the body had none).
        summary: String,
    },
    /// Still rate limited (HTTP 429) after the bounded number of retries.
    #[error("the directory's API rate limit was exceeded; gave up after bounded retries")]
    RateLimited,
    /// The directory could not be reached: 5xx, timeouts, transport errors.
    #[error("the directory is unavailable: {0}")]
    Unavailable(String),
    /// The directory answered something unusable: not JSON, too big, an unexpected
    /// status, a pagination link that cannot be followed.
    #[error("unexpected answer from the directory: {0}")]
    BadResponse(String),
    /// The user id cannot name a directory user (empty, `.` or `..`); nothing was sent.
    #[error("not a directory user id")]
    InvalidUserId,
}

/// A snapshot of a directory client's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DirectoryStats {
    /// HTTP requests sent to the directory (every page and every retry).
    pub api_calls: u64,
    /// HTTP 429 answers received.
    pub rate_limited: u64,
    /// Lookups that failed (one per failed [`GroupSource::user_groups`] call).
    pub errors: u64,
    /// Group entries skipped because they were malformed (no usable id).
    pub malformed_entries: u64,
}

/// The union of the groups' ids and names, sorted and deduplicated, as policies see
/// them (`groups has X` matches either an id or a name).
pub(crate) fn group_keys(groups: &[Group]) -> Arc<[String]> {
    let mut keys: Vec<String> = groups
        .iter()
        .flat_map(|g| [&g.id, &g.name])
        .filter(|s| !s.is_empty())
        .cloned()
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into()
}

/// The group cache for the configured identity provider: `Some` when the provider is
/// Okta with `idp_provider_url` and `idp_service_account` set, else `None` (groups then
/// come from the token's groups claim only).
///
/// Each API request is bounded by `idp_refresh_directory_timeout`, and so is each
/// lookup as a whole (all pages and rate-limit waits). With `shared` (the session store's Redis),
/// answers are shared by every replica ([`SharedGroups`]).
pub(crate) fn from_idp(idp: &Idp, shared: Option<Arc<dyn SharedStore>>) -> Option<Arc<GroupCache>> {
    if idp.provider != Some(IdpKind::Okta) {
        return None;
    }
    // The Management API lives on the org's origin: `idp_directory_url` when given,
    // else the origin of the issuer.
    let org = idp.directory_url.as_ref().or(idp.provider_url.as_ref());
    let (issuer, token) = (org?, idp.service_account.as_ref()?);
    let okta: Arc<dyn GroupSource> = Arc::new(OktaDirectory::new(
        issuer,
        token,
        idp.refresh_directory_timeout,
    ));
    let source: Arc<dyn GroupSource> = match shared {
        Some(store) => Arc::new(SharedGroups::new(
            okta,
            store,
            idp.refresh_directory_interval.as_secs().max(1),
            idp.refresh_directory_max_staleness.as_secs().max(1),
        )),
        None => okta,
    };
    Some(Arc::new(GroupCache::new(
        source,
        idp.refresh_directory_interval,
        idp.refresh_directory_timeout,
        idp.refresh_directory_max_staleness,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(id: &str, name: &str) -> Group {
        Group {
            id: id.into(),
            name: name.into(),
        }
    }

    #[test]
    fn keys_are_ids_and_names_sorted_and_unique() {
        let keys = group_keys(&[
            g("00g2", "Engineering"),
            g("00g1", "Admins"),
            g("00g1", "Admins"),
            g("00g3", ""),
        ]);
        assert_eq!(&*keys, ["00g1", "00g2", "00g3", "Admins", "Engineering"]);
    }
}
