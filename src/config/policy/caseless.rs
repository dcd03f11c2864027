//! Case-insensitive string tests for `email` and `domain`, without allocating.
//!
//! Owned by the policy language: a matcher value is folded once at compile time
//! ([`fold_str`], in [`super::compile`]); the evaluator in stage 4 calls the comparisons here,
//! so both sides fold the same way. A request value is folded lazily, one `char` at a time, while it is compared. Folding is Unicode lowercasing
//! (`char::to_lowercase`, so `K` (Kelvin) and `k` agree) with the final sigma `ς` mapped
//! to `σ`, so that the context-sensitive `str::to_lowercase` and the char-wise fold used
//! here cannot disagree. Pure-ASCII inputs take a byte-wise fast path.

use std::iter::Map;

/// The folded form of one character.
fn fold(c: char) -> Map<std::char::ToLowercase, fn(char) -> char> {
    fn sigma(c: char) -> char {
        if c == 'ς' { 'σ' } else { c }
    }
    c.to_lowercase().map(sigma as fn(char) -> char)
}

/// The folded characters of `s`, front to back.
fn folded(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(fold)
}

/// The folded characters of `s`, back to front.
fn folded_rev(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().rev().flat_map(|c| fold(c).rev())
}

/// Folds a matcher value (compile time only; allocates).
pub(crate) fn fold_str(s: &str) -> String {
    folded(s).collect()
}

/// True when `folded` is a prefix of the fold of `input` (char-wise).
fn prefix_of(input: &str, folded_value: &str) -> bool {
    let mut it = folded(input);
    folded_value.chars().all(|c| it.next() == Some(c))
}

/// `input` equals `value` ignoring case; `value` was folded with [`fold_str`].
pub(crate) fn eq(input: &str, value: &str) -> bool {
    if input.is_ascii() && value.is_ascii() {
        return input.eq_ignore_ascii_case(value);
    }
    folded(input).eq(value.chars())
}

/// `input` starts with `value` ignoring case; `value` was folded with [`fold_str`].
pub(crate) fn starts_with(input: &str, value: &str) -> bool {
    if input.is_ascii() && value.is_ascii() {
        return input
            .as_bytes()
            .get(..value.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(value.as_bytes()));
    }
    prefix_of(input, value)
}

/// `input` ends with `value` ignoring case; `value` was folded with [`fold_str`].
pub(crate) fn ends_with(input: &str, value: &str) -> bool {
    if input.is_ascii() && value.is_ascii() {
        let (i, v) = (input.as_bytes(), value.as_bytes());
        return i.len() >= v.len() && i[i.len() - v.len()..].eq_ignore_ascii_case(v);
    }
    let mut it = folded_rev(input);
    value.chars().rev().all(|c| it.next() == Some(c))
}

/// `input` contains `value` ignoring case; `value` was folded with [`fold_str`].
pub(crate) fn contains(input: &str, value: &str) -> bool {
    if input.is_ascii() && value.is_ascii() {
        let v = value.as_bytes();
        return v.is_empty()
            || input
                .as_bytes()
                .windows(v.len())
                .any(|w| w.eq_ignore_ascii_case(v));
    }
    value.is_empty()
        || input
            .char_indices()
            .any(|(i, _)| input.get(i..).is_some_and(|rest| prefix_of(rest, value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_unicode_agree_with_lowercasing() {
        let cases: [(&str, &str, [bool; 4]); 9] = [
            // input, value (as written), [eq, starts_with, ends_with, contains]
            ("Alice@Example.COM", "alice@example.com", [true; 4]),
            (
                "Alice@Example.COM",
                "@EXAMPLE.com",
                [false, false, true, true],
            ),
            ("Alice@Example.COM", "ALICE", [false, true, false, true]),
            ("alice@example.com", "bob", [false; 4]),
            ("ÉLODIE@ÉCOLE.FR", "élodie@école.fr", [true; 4]),
            ("ÉLODIE@ÉCOLE.FR", "@école.fr", [false, false, true, true]),
            // Kelvin sign lowercases to an ASCII k: the non-ASCII path must see it.
            ("\u{212A}im@x.org", "kim@x.org", [true; 4]),
            ("ΟΔΟΣ@x.gr", "οδος@x.gr", [true; 4]),
            ("a@b", "a@bc", [false; 4]),
        ];
        for (input, value, [e, s, t, c]) in cases {
            let v = fold_str(&value.to_lowercase());
            assert_eq!(eq(input, &v), e, "eq {input} {value}");
            assert_eq!(starts_with(input, &v), s, "starts_with {input} {value}");
            assert_eq!(ends_with(input, &v), t, "ends_with {input} {value}");
            assert_eq!(contains(input, &v), c, "contains {input} {value}");
        }
        assert!(contains("xx@ÉCOLE.fr", &fold_str("cole")));
        assert!(!starts_with("a", "ab") && !ends_with("b", "ab"));
    }
}
