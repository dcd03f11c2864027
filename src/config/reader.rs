//! Reading a mapping key by key, with the environment overlaid and every problem kept.
//!
//! [`Fields`] wraps one YAML mapping (the top level or a route). Each typed getter marks
//! its key as known, prefers the environment variable when the mapping is the top level,
//! and records a [`Problem`](super::problem::Problem) instead of failing. [`Fields::finish`]
//! then reports every key nobody asked for, with a did-you-mean.

use std::time::Duration;

use base64::Engine as _;

use super::duration;
use super::env::Env;
use super::node::Node;
use super::problem::{Problems, join};
use super::secret::Secret;

/// A value and where it came from.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    /// From the YAML file (or a decoded base64 document).
    File(&'a Node),
    /// From an environment variable: always a string, parsed by the getter.
    Env(String),
}

/// A typed reader over one mapping.
pub struct Fields<'a> {
    path: String,
    entries: &'a [(String, Node)],
    env: Option<&'a dyn Env>,
    known: Vec<&'static str>,
    /// Where problems go.
    pub problems: &'a mut Problems,
}

impl<'a> Fields<'a> {
    /// Reads the mapping `node` found at `path`. With `env`, upper-cased variables win.
    /// A node that is not a mapping is reported and read as empty.
    pub fn new(
        node: &'a Node,
        path: &str,
        env: Option<&'a dyn Env>,
        problems: &'a mut Problems,
    ) -> Self {
        let entries: &'a [(String, Node)] = match node {
            Node::Map(entries) => entries,
            Node::Null => &[],
            other => {
                problems.push(
                    path,
                    format!("expected a map of settings, found {}", other.kind()),
                );
                &[]
            }
        };
        Self {
            path: path.to_owned(),
            entries,
            env,
            known: Vec::new(),
            problems,
        }
    }

    /// The path of a key in this mapping, for problems.
    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw value of `key` (environment first), marking the key as known.
    pub fn value(&mut self, key: &'static str) -> Option<Value<'a>> {
        self.known.push(key);
        if let Some(env) = self.env
            && let Some(v) = env.var(&key.to_ascii_uppercase())
        {
            return Some(Value::Env(v));
        }
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| **v != Node::Null)
            .map(Value::File)
    }

    /// The raw file node of `key`, marking it known. No environment overlay.
    pub fn node(&mut self, key: &'static str) -> Option<&'a Node> {
        self.known.push(key);
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| **v != Node::Null)
    }

    /// True when `key` is present (file or environment), without marking it known.
    pub fn has(&self, key: &str) -> bool {
        self.env
            .is_some_and(|e| e.var(&key.to_ascii_uppercase()).is_some())
            || self
                .entries
                .iter()
                .any(|(k, v)| k == key && *v != Node::Null)
    }

    /// A string setting.
    pub fn string(&mut self, key: &'static str) -> Option<String> {
        match self.value(key)? {
            Value::Env(s) => Some(s),
            Value::File(n @ (Node::Str(_) | Node::Int(_) | Node::Float(_) | Node::Bool(_))) => {
                n.as_scalar_string()
            }
            Value::File(other) => {
                let msg = format!("expected a string, found {}", other.kind());
                self.problems.push(self.path_of(key), msg);
                None
            }
        }
    }

    /// A boolean setting (`true`/`false`; from the environment also `1`/`0`).
    pub fn bool(&mut self, key: &'static str) -> Option<bool> {
        let parsed = match self.value(key)? {
            Value::File(Node::Bool(b)) => Ok(*b),
            Value::Env(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" | "" => Ok(false),
                _ => Err(format!("expected true or false, found {s:?}")),
            },
            Value::File(other) => Err(format!("expected true or false, found {}", other.kind())),
        };
        self.ok_or_report(key, parsed)
    }

    /// A boolean that defaults to `default` when absent.
    pub fn bool_or(&mut self, key: &'static str, default: bool) -> bool {
        self.bool(key).unwrap_or(default)
    }

    /// A whole number.
    pub fn u64(&mut self, key: &'static str) -> Option<u64> {
        let parsed = match self.value(key)? {
            Value::File(Node::Int(i)) => u64::try_from(*i).map_err(|_| format!("{i} is negative")),
            Value::Env(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("expected a whole number, found {s:?}")),
            Value::File(other) => Err(format!("expected a whole number, found {}", other.kind())),
        };
        self.ok_or_report(key, parsed)
    }

    /// A Go-syntax duration (`30s`, `1h30m`).
    pub fn duration(&mut self, key: &'static str) -> Option<Duration> {
        let parsed = match self.value(key)? {
            Value::Env(s) => duration::parse(&s),
            Value::File(Node::Str(s)) => duration::parse(s),
            Value::File(Node::Int(0)) => Ok(Duration::ZERO),
            Value::File(Node::Int(i)) => Err(format!("{i} has no unit; write e.g. \"{i}s\"")),
            Value::File(other) => Err(format!(
                "expected a duration such as \"30s\", found {}",
                other.kind()
            )),
        };
        self.ok_or_report(key, parsed)
    }

    /// A duration that defaults to `default` when absent or invalid.
    pub fn duration_or(&mut self, key: &'static str, default: Duration) -> Duration {
        self.duration(key).unwrap_or(default)
    }

    /// A list of strings: a YAML list of scalars, or a comma-separated string
    /// (always so in the environment).
    pub fn strings(&mut self, key: &'static str) -> Option<Vec<String>> {
        let parsed = match self.value(key)? {
            Value::Env(s) => Ok(split_list(&s)),
            Value::File(Node::Str(s)) => Ok(split_list(s)),
            Value::File(Node::List(items)) => items
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    n.as_scalar_string()
                        .ok_or_else(|| format!("item {i}: expected a string, found {}", n.kind()))
                })
                .collect(),
            Value::File(other) => Err(format!(
                "expected a list of strings, found {}",
                other.kind()
            )),
        };
        self.ok_or_report(key, parsed)
    }

    /// A map of strings to strings: a YAML map; in the environment JSON (`{"K":"V"}`)
    /// or `K1:V1,K2:V2`.
    pub fn string_map(&mut self, key: &'static str) -> Option<Vec<(String, String)>> {
        let parsed = match self.value(key)? {
            Value::Env(s) => parse_env_map(&s),
            Value::File(node) => map_of_strings(node),
        };
        self.ok_or_report(key, parsed)
    }

    /// A secret from `key` or from the file named by `<key>_file` (both forms also from
    /// the environment). Giving both is a problem; an unreadable file is a problem that
    /// names the file, never its content.
    pub fn secret(&mut self, key: &'static str, file_key: &'static str) -> Option<Secret> {
        let inline = self.string(key);
        let path = self.string(file_key);
        match (inline, path) {
            (Some(_), Some(_)) => {
                self.problems.push(
                    self.path_of(key),
                    format!("set either `{key}` or `{file_key}`, not both"),
                );
                None
            }
            (Some(v), None) => Some(Secret::new(v)),
            (None, Some(p)) => match std::fs::read_to_string(&p) {
                Ok(v) => Some(Secret::new(v.trim_end_matches(['\r', '\n']))),
                Err(e) => {
                    self.problems
                        .push(self.path_of(file_key), format!("cannot read {p:?}: {e}"));
                    None
                }
            },
            (None, None) => None,
        }
    }

    /// Bytes given inline as base64 under `key` or as a file path under `file_key`.
    pub fn bytes_inline_or_file(
        &mut self,
        key: &'static str,
        file_key: &'static str,
    ) -> Option<Vec<u8>> {
        let secret = self.secret(key, file_key)?;
        if self.has(file_key) {
            return Some(secret.expose().as_bytes().to_vec());
        }
        match decode_base64(secret.expose()) {
            Some(bytes) => Some(bytes),
            None => {
                self.problems
                    .push(self.path_of(key), "expected base64 (of a PEM file)");
                None
            }
        }
    }

    /// Records a parse result's error at `key`.
    pub fn ok_or_report<T>(&mut self, key: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(msg) => {
                self.problems.push(self.path_of(key), msg);
                None
            }
        }
    }

    /// Reports every key that no getter asked for.
    pub fn finish(self) {
        for (key, _) in self.entries {
            if !self.known.iter().any(|k| k == key) {
                self.problems.unknown_key(&self.path, key, &self.known);
            }
        }
    }
}

/// Splits a comma-separated list, trimming blanks and dropping empty items.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A YAML map of scalar values as string pairs.
pub fn map_of_strings(node: &Node) -> Result<Vec<(String, String)>, String> {
    match node {
        Node::Map(entries) => entries
            .iter()
            .map(|(k, v)| match v.as_scalar_string() {
                Some(s) => Ok((k.clone(), s)),
                None => Err(format!("{k}: expected a string, found {}", v.kind())),
            })
            .collect(),
        other => Err(format!("expected a map, found {}", other.kind())),
    }
}

fn parse_env_map(s: &str) -> Result<Vec<(String, String)>, String> {
    let t = s.trim();
    if t.starts_with('{') {
        let json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(t).map_err(|e| format!("expected a JSON object: {e}"))?;
        return json
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                serde_json::Value::Bool(_) | serde_json::Value::Number(_) => Ok((k, v.to_string())),
                _ => Err(format!("{k}: expected a string value")),
            })
            .collect();
    }
    split_list(t)
        .into_iter()
        .map(|pair| match pair.split_once(':') {
            Some((k, v)) => Ok((k.trim().to_owned(), v.trim().to_owned())),
            None => Err(format!(
                "expected KEY:VALUE pairs separated by commas, found {pair:?}"
            )),
        })
        .collect()
}

/// Decodes standard or URL-safe base64, with or without padding, ignoring whitespace.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(&compact).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::MapEnv;
    use crate::config::yaml;

    #[test]
    fn env_wins_and_lists_split_on_commas() {
        let node = yaml::parse("idp_scopes: [a, b]\nlog_level: debug\n").unwrap();
        let env = MapEnv::from_pairs([("IDP_SCOPES", "openid, email")]);
        let mut problems = Problems::new();
        let mut f = Fields::new(&node, "", Some(&env), &mut problems);
        assert_eq!(
            f.strings("idp_scopes"),
            Some(vec!["openid".into(), "email".into()])
        );
        assert_eq!(f.string("log_level").as_deref(), Some("debug"));
        f.finish();
        assert!(problems.is_empty());
    }

    #[test]
    fn every_problem_is_kept() {
        let node = yaml::parse("timeout_idle: 5\ninsecure_server: maybe\nlog_levle: x\n").unwrap();
        let mut problems = Problems::new();
        let mut f = Fields::new(&node, "", None, &mut problems);
        assert_eq!(f.duration("timeout_idle"), None);
        assert_eq!(f.bool("insecure_server"), None);
        f.string("log_level");
        f.finish();
        let text: Vec<String> = problems.errors().iter().map(|p| p.to_string()).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].starts_with("timeout_idle: 5 has no unit"));
        assert!(text[1].starts_with("insecure_server: expected true or false"));
        assert_eq!(text[2], "log_levle: unknown key; did you mean `log_level`?");
    }

    #[test]
    fn env_maps_accept_json_and_pairs() {
        assert_eq!(
            parse_env_map(r#"{"A":"1"}"#),
            Ok(vec![("A".into(), "1".into())])
        );
        assert_eq!(
            parse_env_map("X-A: 1, X-B:2"),
            Ok(vec![("X-A".into(), "1".into()), ("X-B".into(), "2".into())])
        );
        assert!(parse_env_map("nocolon").is_err());
    }
}
