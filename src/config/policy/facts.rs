//! What can be known about a compiled policy before any request: which truth values each
//! node can take, and whether the user can change them. [`super::compile`] runs this
//! analysis once per route at load; its conclusions are the compiled policy's cheap queries
//! (`can_never_allow`, `needs_user`, `uses_groups`).
//!
//! The analysis is abstract Kleene logic over sets of values, treating children as
//! independent. That over-approximates (`and: [user: a, not: [user: a]]` looks satisfiable),
//! so its conclusions are safe in one direction: a node reported constant really is, and a
//! policy reported unable to allow really cannot.

use super::compile::Test;
use super::ppl::Operator;

/// The truth values a node can take, as a bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Values(u8);

impl Values {
    pub(super) const TRUE: u8 = 1;
    pub(super) const FALSE: u8 = 2;
    pub(super) const UNKNOWN: u8 = 4;

    pub(super) fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// Swaps true and false.
    fn not(self) -> Values {
        let swap = (self.0 & Self::TRUE) << 1 | (self.0 & Self::FALSE) >> 1;
        Values(swap | self.0 & Self::UNKNOWN)
    }

    /// Kleene `and` of independent values (an empty `and` is true).
    fn and(all: impl Iterator<Item = Values> + Clone) -> Values {
        let mut v = 0;
        if all.clone().all(|c| c.has(Self::TRUE)) {
            v |= Self::TRUE;
        }
        if all.clone().any(|c| c.has(Self::FALSE)) {
            v |= Self::FALSE;
        }
        if all.clone().all(|c| c.has(Self::TRUE | Self::UNKNOWN))
            && all.clone().any(|c| c.has(Self::UNKNOWN))
        {
            v |= Self::UNKNOWN;
        }
        Values(v)
    }

    /// Kleene `or` of independent values (an empty `or` is false).
    fn or(all: impl Iterator<Item = Values> + Clone) -> Values {
        Values::and(all.map(Values::not)).not()
    }

    /// Exactly one value is possible.
    fn constant(self) -> bool {
        self.0.count_ones() == 1
    }
}

/// What the analysis knows about a node.
#[derive(Clone, Copy, Debug)]
pub(super) struct Facts {
    /// The values it can take.
    pub(super) values: Values,
    /// Its value may change with the user: a user criterion below, and not constant.
    pub(super) user_dependent: bool,
    /// Its value may change with the user's groups: a `groups` criterion below, and not
    /// constant.
    pub(super) groups_dependent: bool,
}

impl Facts {
    /// A criterion: `accept`/`reject` are constant; user criteria may also be unknown.
    pub(super) fn leaf(test: &Test) -> Facts {
        let user = test.needs_user();
        let values = match test {
            Test::Const(true) => Values::TRUE,
            Test::Const(false) => Values::FALSE,
            _ if user => Values::TRUE | Values::FALSE | Values::UNKNOWN,
            _ => Values::TRUE | Values::FALSE,
        };
        Facts {
            values: Values(values),
            user_dependent: user,
            groups_dependent: matches!(test, Test::Groups(_)),
        }
    }

    /// An operator over children with these facts.
    pub(super) fn group(op: Operator, kids: &[Facts]) -> Facts {
        let values = kids.iter().map(|f| f.values);
        let values = match op {
            Operator::And => Values::and(values),
            Operator::Or => Values::or(values),
            Operator::Not => Values::and(values.map(Values::not)),
            Operator::Nor => Values::or(values.map(Values::not)),
        };
        let varies = !values.constant();
        Facts {
            values,
            user_dependent: varies && kids.iter().any(|f| f.user_dependent),
            groups_dependent: varies && kids.iter().any(|f| f.groups_dependent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Values = Values(Values::TRUE);
    const F: Values = Values(Values::FALSE);
    const U: Values = Values(Values::UNKNOWN);
    const ANY: Values = Values(7);

    fn and(v: &[Values]) -> Values {
        Values::and(v.iter().copied())
    }
    fn or(v: &[Values]) -> Values {
        Values::or(v.iter().copied())
    }

    #[test]
    fn abstract_kleene_logic() {
        assert_eq!(and(&[T, U]), U);
        assert_eq!(and(&[F, U]), F);
        assert_eq!(and(&[T, T]), T);
        assert_eq!(or(&[F, U]), U);
        assert_eq!(or(&[T, U]), T);
        assert_eq!(or(&[]), F);
        assert_eq!(and(&[]), T);
        assert_eq!(and(&[ANY, T]), ANY);
        assert_eq!(and(&[ANY, F]), F);
        assert_eq!(or(&[ANY, T]), T);
        assert_eq!(U.not(), U);
        assert_eq!(Values(Values::TRUE | Values::UNKNOWN).not(), Values(6));
    }
}
