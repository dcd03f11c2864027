//! Configuration: `config.yaml` and environment variables → one validated [`Config`].
//!
//! Pomerium's keys and defaults; every key also comes from its upper-cased environment
//! variable, which wins over the file; `POLICY`/`ROUTES` in the environment hold base64
//! of a YAML route list. Loading reads everything, records every problem with its path
//! and line, and fails once with all of them — or returns a config the rest of the
//! crate can trust. Nothing here is on the request path.

pub mod access;
pub mod auth;
pub mod duration;
pub mod env;
pub mod headers;
pub mod node;
pub mod policy;
pub mod problem;
pub mod reader;
pub mod route;
mod route_paths;
pub mod secret;
pub mod server;
pub mod template;
pub mod yaml;

use std::path::{Path, PathBuf};

use self::env::Env;
use self::node::Node;
use self::problem::{Problem, Problems, index};
use self::reader::{Fields, decode_base64};
use self::route::{RouteDefaults, RouteSpec};

pub use self::auth::Auth;
pub use self::server::ServerSettings;

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    /// Listener settings.
    pub server: ServerSettings,
    /// Sign-in, session and identity settings.
    pub auth: Auth,
    /// Routes in match order: `policy` entries, then `routes` entries.
    pub routes: Vec<RouteSpec>,
}

/// A configuration and the warnings found while loading it.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Things that are allowed but probably wrong.
    pub warnings: Vec<Problem>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// One or more problems; all of them are listed.
    #[error("{} problem(s) in the configuration:\n{}", problems.len(), render(problems))]
    Invalid {
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads `path` (or only the environment when `path` is None) and validates it.
pub fn load(path: Option<&Path>, env: &dyn Env) -> Result<Loaded, ConfigError> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
            path: p.to_owned(),
            source,
        })?,
        None => String::new(),
    };
    load_str(&text, path, env)
}

/// Validates configuration text. `path` names the file in messages and anchors
/// relative `policy_files`.
pub fn load_str(text: &str, path: Option<&Path>, env: &dyn Env) -> Result<Loaded, ConfigError> {
    let file_label = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "config".into());
    let root = yaml::parse(text).map_err(|e| ConfigError::Invalid {
        problems: vec![Problem {
            path: String::new(),
            message: format!("not valid YAML: {e}"),
            location: Some(match e.line {
                Some(l) => format!("{file_label}:{l}"),
                None => file_label.clone(),
            }),
        }],
    })?;
    let base_dir = path
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .to_owned();
    let mut problems = Problems::new();
    let config = read(&root, env, &base_dir, path, &mut problems);
    for p in problems.all_mut() {
        if !p.path.is_empty()
            && !p.path.starts_with("ROUTES")
            && !p.path.starts_with("POLICY")
            && let Some(line) = yaml::locate(text, &p.path)
        {
            p.location = Some(format!("{file_label}:{line}"));
        }
    }
    let (errors, warnings) = problems.into_parts();
    if errors.is_empty() {
        Ok(Loaded { config, warnings })
    } else {
        Err(ConfigError::Invalid { problems: errors })
    }
}

fn read(
    root: &Node,
    env: &dyn Env,
    base_dir: &Path,
    source: Option<&Path>,
    problems: &mut Problems,
) -> Config {
    let mut f = Fields::new(root, "", Some(env), problems);
    let server = server::read(&mut f);
    let auth = auth::read(&mut f, server.insecure);
    let mut route_lists = Vec::new();
    for key in ["policy", "routes"] {
        let env_name = key.to_ascii_uppercase();
        let node = match env.var(&env_name) {
            Some(b64) => decode_routes_env(&env_name, &b64, f.problems).map(|n| (n, env_name)),
            None => f.node(key).cloned().map(|n| (n, key.to_owned())),
        };
        f.node(key); // mark known even when the environment supplied it
        route_lists.extend(node);
    }
    f.finish();

    let defaults = RouteDefaults {
        upstream_timeout: server.timeouts.default_upstream,
        response_headers: &server.response_headers,
        base_dir,
    };
    let mut routes = Vec::new();
    for (node, label) in &route_lists {
        let Node::List(items) = node else {
            problems.push(
                label.as_str(),
                format!("expected a list of routes, found {}", node.kind()),
            );
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let id = routes.len();
            if let Some(spec) = route::read(item, &index(label, i), id, &defaults, problems) {
                routes.push(spec);
            }
        }
    }
    check_duplicates(&routes, problems);
    Config {
        source: source.map(Path::to_owned),
        server,
        auth,
        routes,
    }
}

fn decode_routes_env(name: &str, b64: &str, problems: &mut Problems) -> Option<Node> {
    let Some(bytes) = decode_base64(b64) else {
        problems.push(name, "expected base64 of a YAML list of routes");
        return None;
    };
    let Ok(text) = String::from_utf8(bytes) else {
        problems.push(name, "decodes to something that is not UTF-8 text");
        return None;
    };
    match yaml::parse(&text) {
        Ok(node) => Some(node),
        Err(e) => {
            let at = e
                .line
                .map(|l| format!(" (line {l} of the decoded YAML)"))
                .unwrap_or_default();
            problems.push(name, format!("not valid YAML{at}: {e}"));
            None
        }
    }
}

/// Two routes with the same `from` and the same path match are ambiguous: an error.
fn check_duplicates(routes: &[RouteSpec], problems: &mut Problems) {
    for (i, a) in routes.iter().enumerate() {
        if let Some(b) = routes[..i]
            .iter()
            .find(|b| b.from == a.from && same_match(&a.path_match, &b.path_match))
        {
            problems.push(
                a.name.clone(),
                format!("duplicate route: same `from` and path match as {}", b.name),
            );
        }
    }
}

fn same_match(a: &route::PathMatch, b: &route::PathMatch) -> bool {
    use route::PathMatch::*;
    match (a, b) {
        (Prefix(x), Prefix(y)) | (Exact(x), Exact(y)) => x == y,
        (Regex(x), Regex(y)) => x.as_str() == y.as_str(),
        _ => false,
    }
}
