//! Configuration problems, collected rather than thrown.
//!
//! Loading never stops at the first mistake: every reader pushes a [`Problem`] into a
//! [`Problems`] list and carries on, so the operator sees every error in one run. A
//! problem names the dotted path of the offending value (`routes[2].allowed_grups`);
//! `config::yaml` later adds the file and line where it can find them.

use std::fmt;

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: a dotted path such as `routes[2].policy.allow.and[0]`; empty for the whole file.
    pub path: String,
    /// What is wrong, in plain words. Never contains a secret value.
    pub message: String,
    /// Where in which file, when it could be found: `config.yaml:12`.
    pub location: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// An ordered list of problems found while reading the configuration.
#[derive(Debug, Default)]
pub struct Problems {
    items: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Problems {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.items.push(Problem {
            path: path.into(),
            message: message.into(),
            location: None,
        });
    }

    /// Records a warning at `path`: reported, but loading still succeeds.
    pub fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem {
            path: path.into(),
            message: message.into(),
            location: None,
        });
    }

    /// Records an unknown key, suggesting the closest known one when it is close enough.
    pub fn unknown_key(&mut self, path: &str, key: &str, known: &[&str]) {
        let full = join(path, key);
        match did_you_mean(key, known) {
            Some(best) => self.push(full, format!("unknown key; did you mean `{best}`?")),
            None => self.push(full, "unknown key"),
        }
    }

    /// True when no error was recorded (warnings do not count).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The errors, in the order they were found.
    pub fn errors(&self) -> &[Problem] {
        &self.items
    }

    /// The warnings, in the order they were found.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// Mutable access to every error and warning, to attach locations.
    pub fn all_mut(&mut self) -> impl Iterator<Item = &mut Problem> {
        self.items.iter_mut().chain(self.warnings.iter_mut())
    }

    /// Takes the errors and warnings out.
    pub fn into_parts(self) -> (Vec<Problem>, Vec<Problem>) {
        (self.items, self.warnings)
    }
}

/// Joins a parent path and a key: `join("routes[0]", "to")` is `routes[0].to`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Joins a parent path and a list index: `index("routes", 2)` is `routes[2]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// The known name closest to `key`, if it is plausibly a typo of it.
pub fn did_you_mean<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let known = ["allowed_groups", "allowed_users", "prefix"];
        assert_eq!(
            did_you_mean("allowed_grups", &known),
            Some("allowed_groups")
        );
        assert_eq!(did_you_mean("zzz", &known), None);
    }

    #[test]
    fn unknown_key_message_names_path_and_suggestion() {
        let mut p = Problems::new();
        p.unknown_key("routes[2]", "allowed_grups", &["allowed_groups"]);
        assert_eq!(
            p.errors()[0].to_string(),
            "routes[2].allowed_grups: unknown key; did you mean `allowed_groups`?"
        );
    }
}
