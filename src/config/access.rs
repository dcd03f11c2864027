//! Who may use a route: the legacy `allow*` fields, an embedded PPL `policy`, and
//! `policy_files` from the `policies/` folder — read and validated at load.
//!
//! Invariant: every field is checked here (unknown criteria, conflicting fields, files
//! that do not parse), so a route that loads has a well-formed access description.

use std::path::{Path, PathBuf};

use super::node::Node;
use super::policy::ppl::{Policy, parse_policy};
use super::problem::{Problems, index};
use super::reader::Fields;
use super::yaml;

/// A route's access settings, as written.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// `allow_public_unauthenticated_access`: no sign-in at all.
    pub public: bool,
    /// `allow_any_authenticated_user`.
    pub any_authenticated_user: bool,
    /// `cors_allow_preflight`: unauthenticated CORS preflight requests pass.
    pub cors_allow_preflight: bool,
    /// `allowed_users`: IdP subjects or emails.
    pub allowed_users: Vec<String>,
    /// `allowed_domains`: email domains.
    pub allowed_domains: Vec<String>,
    /// `allowed_groups`: group ids or names.
    pub allowed_groups: Vec<String>,
    /// `allowed_idp_claims`: claim name → accepted values.
    pub allowed_idp_claims: Vec<(String, Vec<String>)>,
    /// The embedded `policy`.
    pub policy: Option<Policy>,
    /// Policies loaded from `policy_files`, with the resolved file name.
    pub policy_files: Vec<(PathBuf, Policy)>,
    /// `jwt_groups_filter` for this route.
    pub jwt_groups_filter: Option<GroupsFilter>,
}

/// `jwt_groups_filter`: which groups go into identity headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupsFilter {
    /// Groups always allowed through.
    pub groups: Vec<String>,
    /// Also pass the groups the route's policy mentions.
    pub infer_from_ppl: bool,
}

impl Access {
    /// True when the route names any user, domain, group or claim allow-list.
    pub fn has_allow_lists(&self) -> bool {
        !self.allowed_users.is_empty()
            || !self.allowed_domains.is_empty()
            || !self.allowed_groups.is_empty()
            || !self.allowed_idp_claims.is_empty()
    }
}

/// Reads the access fields of a route. None when any of them has a problem.
pub fn read(f: &mut Fields<'_>, base_dir: &Path) -> Option<Access> {
    let mut a = Access {
        public: f.bool_or("allow_public_unauthenticated_access", false),
        any_authenticated_user: f.bool_or("allow_any_authenticated_user", false),
        cors_allow_preflight: f.bool_or("cors_allow_preflight", false),
        allowed_users: f.strings("allowed_users").unwrap_or_default(),
        allowed_domains: f.strings("allowed_domains").unwrap_or_default(),
        allowed_groups: f.strings("allowed_groups").unwrap_or_default(),
        ..Access::default()
    };
    if let Some(node) = f.node("allowed_idp_claims") {
        let path = f.path_of("allowed_idp_claims");
        a.allowed_idp_claims = read_claims(node, &path, f.problems)?;
    }
    if let Some(node) = f.node("policy") {
        let path = f.path_of("policy");
        a.policy = Some(parse_policy(node, &path, f.problems)?);
    }
    for (i, name) in f
        .strings("policy_files")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let path = index(&f.path_of("policy_files"), i);
        a.policy_files
            .push(load_policy_file(base_dir, &name, &path, f.problems)?);
    }
    if let Some(node) = f.node("jwt_groups_filter") {
        let path = f.path_of("jwt_groups_filter");
        a.jwt_groups_filter = Some(read_groups_filter(node, &path, f.problems)?);
    }

    if a.public && (a.any_authenticated_user || a.has_allow_lists()) {
        f.problems.push(
            f.path_of("allow_public_unauthenticated_access"),
            "cannot be combined with `allow_any_authenticated_user` or `allowed_*` lists",
        );
        return None;
    }
    if a.any_authenticated_user && (!a.allowed_users.is_empty() || !a.allowed_domains.is_empty()) {
        f.problems.push(
            f.path_of("allow_any_authenticated_user"),
            "cannot be combined with `allowed_users` or `allowed_domains`",
        );
        return None;
    }
    Some(a)
}

fn read_claims(
    node: &Node,
    path: &str,
    problems: &mut Problems,
) -> Option<Vec<(String, Vec<String>)>> {
    let Node::Map(entries) = node else {
        problems.push(
            path,
            format!(
                "expected a map of claim → list of values, found {}",
                node.kind()
            ),
        );
        return None;
    };
    let mut out = Vec::with_capacity(entries.len());
    for (claim, values) in entries {
        let list = match values {
            Node::List(items) => items.iter().filter_map(Node::as_scalar_string).collect(),
            other => match other.as_scalar_string() {
                Some(s) => vec![s],
                None => {
                    problems.push(format!("{path}.{claim}"), "expected a list of values");
                    return None;
                }
            },
        };
        out.push((claim.clone(), list));
    }
    Some(out)
}

/// Reads `jwt_groups_filter`: a list of groups, or `{groups: [...], infer_from_ppl: bool}`.
pub fn read_groups_filter(
    node: &Node,
    path: &str,
    problems: &mut Problems,
) -> Option<GroupsFilter> {
    match node {
        Node::List(items) => Some(GroupsFilter {
            groups: items.iter().filter_map(Node::as_scalar_string).collect(),
            infer_from_ppl: false,
        }),
        Node::Map(_) => {
            let mut f = Fields::new(node, path, None, problems);
            let filter = GroupsFilter {
                groups: f.strings("groups").unwrap_or_default(),
                infer_from_ppl: f.bool_or("infer_from_ppl", false),
            };
            f.finish();
            Some(filter)
        }
        other => {
            problems.push(
                path,
                format!("expected a list or a map, found {}", other.kind()),
            );
            None
        }
    }
}

/// Loads one policy file, relative to the config file's directory.
fn load_policy_file(
    base: &Path,
    name: &str,
    path: &str,
    problems: &mut Problems,
) -> Option<(PathBuf, Policy)> {
    let file = base.join(name);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            problems.push(
                path,
                format!("cannot read policy file {}: {e}", file.display()),
            );
            return None;
        }
    };
    let node = match yaml::parse(&text) {
        Ok(n) => n,
        Err(e) => {
            let at = e.line.map(|l| format!(":{l}")).unwrap_or_default();
            problems.push(path, format!("{}{at}: {e}", file.display()));
            return None;
        }
    };
    // Problems inside the file are reported against the file, with its own line numbers.
    let mut inner = Problems::new();
    let policy = parse_policy(&node, "", &mut inner);
    let (errors, _) = inner.into_parts();
    for e in &errors {
        let line = yaml::locate(&text, &e.path)
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        let inside = if e.path.is_empty() {
            String::new()
        } else {
            format!(" at {}", e.path)
        };
        problems.push(
            path,
            format!("{}{line}{inside}: {}", file.display(), e.message),
        );
    }
    Some((file, policy?))
}
