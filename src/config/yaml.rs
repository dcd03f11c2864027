//! The only place that calls the YAML crate.
//!
//! Turns YAML text (the config file, a base64 `ROUTES` value, a policy file) into a
//! [`Node`] tree, and finds the line of a dotted path in the text so problems can say
//! `config.yaml:12`. Swapping the YAML backend touches this file alone.

use super::node::Node;

/// A YAML syntax error, with the line and column the parser reported.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// The parser's message, without the value that failed (it may be a secret).
    pub message: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
}

/// Parses YAML text into a [`Node`]. An empty document is [`Node::Null`].
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| SyntaxError {
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })?;
    convert(value)
}

fn convert(value: serde_yaml::Value) -> Result<Node, SyntaxError> {
    use serde_yaml::Value as V;
    Ok(match value {
        V::Null => Node::Null,
        V::Bool(b) => Node::Bool(b),
        V::Number(n) => match n.as_i64() {
            Some(i) => Node::Int(i),
            None => Node::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        V::String(s) => Node::Str(s),
        V::Sequence(items) => Node::List(items.into_iter().map(convert).collect::<Result<_, _>>()?),
        V::Mapping(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    V::String(s) => s,
                    V::Bool(b) => b.to_string(),
                    V::Number(n) => n.to_string(),
                    V::Null => "null".to_owned(),
                    other => {
                        return Err(SyntaxError {
                            message: format!(
                                "a mapping key must be a plain value, found {other:?}"
                            ),
                            line: None,
                        });
                    }
                };
                entries.push((key, convert(v)?));
            }
            Node::Map(entries)
        }
        V::Tagged(tagged) => convert(tagged.value)?,
    })
}

/// One step of a dotted path.
#[derive(Debug, PartialEq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Step::Index(i));
            }
        }
    }
    out
}

/// Finds the 1-based line where the value at `path` starts in block-style YAML `text`.
///
/// Best effort: it follows indentation, so flow-style (`{a: 1}`) values resolve to the
/// line of their nearest block-style parent. Returns `None` when not even the first
/// step is found.
pub fn locate(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    // The current scope: lines [start, end) and the column of its entries.
    let (mut start, mut end) = (0usize, lines.len());
    let mut found: Option<usize> = None;
    for step in steps(path) {
        let Some(col) = scope_column(&lines[start..end], &step) else {
            return found.map(|l| l + 1);
        };
        let hit = match step {
            Step::Key(key) => (start..end).find(|&i| key_at(lines[i], col) == Some(key)),
            Step::Index(n) => (start..end).filter(|&i| dash_at(lines[i], col)).nth(n),
        };
        let Some(line) = hit else {
            return found.map(|l| l + 1);
        };
        found = Some(line);
        // The value's scope runs until the next entry at this column or a dedent.
        let stop = (line + 1..end)
            .find(|&i| entry_column(lines[i]).is_some_and(|c| c <= col))
            .unwrap_or(end);
        start = line;
        end = stop;
        // Entries of a list item begin on the item's own line, after "- ".
        if matches!(step, Step::Key(_)) {
            start = line + 1;
        }
    }
    found.map(|l| l + 1)
}

/// The column of the first entry (key or dash) in a scope.
fn scope_column(lines: &[&str], step: &Step<'_>) -> Option<usize> {
    lines.iter().find_map(|l| match step {
        Step::Key(_) => key_column(l),
        Step::Index(_) => entry_column(l).filter(|&c| l[c..].starts_with('-')),
    })
}

/// Column where a line's content starts, skipping blanks and comments.
fn entry_column(line: &str) -> Option<usize> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    Some(line.len() - trimmed.len())
}

/// Column of the mapping key on this line (after any "- " list markers).
fn key_column(line: &str) -> Option<usize> {
    let mut col = entry_column(line)?;
    while line[col..].starts_with("- ") {
        col += 2;
        col += line[col..].len() - line[col..].trim_start().len();
    }
    line[col..].contains(':').then_some(col)
}

fn key_at(line: &str, col: usize) -> Option<&str> {
    if key_column(line)? != col {
        return None;
    }
    let rest = &line[col..];
    let end = rest.find(':')?;
    Some(rest[..end].trim().trim_matches(|c| c == '"' || c == '\''))
}

fn dash_at(line: &str, col: usize) -> bool {
    entry_column(line) == Some(col) && line[col..].starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
address: ':8080'
# comment
routes:
  - from: https://a.example.com
    to: http://127.0.0.1:1
  - from: https://b.example.com
    to:
      - http://127.0.0.1:2
    policy:
      allow:
        and:
          - email: x
";

    #[test]
    fn parses_in_order() {
        let node = parse("b: 1\na: [x, true]\n").unwrap();
        assert_eq!(
            node,
            Node::Map(vec![
                ("b".into(), Node::Int(1)),
                (
                    "a".into(),
                    Node::List(vec![Node::Str("x".into()), Node::Bool(true)])
                )
            ])
        );
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let err = parse("a: 1\nb: [\n").unwrap_err();
        assert!(err.line.is_some());
    }

    #[test]
    fn locates_nested_paths() {
        assert_eq!(locate(DOC, "address"), Some(1));
        assert_eq!(locate(DOC, "routes"), Some(3));
        assert_eq!(locate(DOC, "routes[0]"), Some(4));
        assert_eq!(locate(DOC, "routes[1].to"), Some(7));
        assert_eq!(locate(DOC, "routes[1].to[0]"), Some(8));
        assert_eq!(locate(DOC, "routes[1].policy.allow.and[0].email"), Some(12));
        assert_eq!(locate(DOC, "routes[0].to"), Some(5));
        // A missing leaf falls back to its nearest parent.
        assert_eq!(locate(DOC, "routes[1].nope"), Some(6));
        assert_eq!(
            locate(DOC, "routes[0].to[0]"),
            Some(5),
            "a scalar where a list could be"
        );
        assert_eq!(locate(DOC, "nope"), None);
    }
}
