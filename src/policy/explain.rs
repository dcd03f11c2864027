//! Stage 4, **authorize**: human text for decisions — which rule, from which source, and
//! which criterion (or operator group) decided — as methods of the compiled policy. Used
//! in logs, `portcullis check` and error pages; never on the request hot path.

use super::eval::{Decision, Outcome, Reason};
use crate::config::policy::compile::{CompiledPolicy, Node, Test};
use crate::config::policy::ppl::{Action, ListCheck, Operator};

impl CompiledPolicy {
    /// Human text of the rule and criterion a [`Reason`] names, e.g.
    /// `allow rule 2 (policy_files[0] engineering.yaml): groups has "engineering"`.
    /// Rules are numbered from 1 per action, across the legacy fields, `policy` and
    /// `policy_files` in that order. Groups read `all of [..]`, `any of [..]`,
    /// `none of [..]` (`not`) and `not all of [..]` (`nor`).
    pub fn explain(&self, reason: Reason) -> String {
        let Some(rule) = self.rules.get(reason.rule()) else {
            return format!("rule #{} (not in this policy)", reason.rule());
        };
        let mut text = format!("{} rule {} ({}): ", rule.action, rule.number, rule.source);
        self.node_text(reason.criterion(), &mut text);
        text
    }

    /// One line for a log or `policy explain`: the outcome and why, e.g.
    /// `denied: allow rule 1 (policy): groups has "admins" — not a member` or
    /// `sign-in needed for allow rule 1 (policy): …`. A deny because no allow rule held
    /// names the first allow rule and the criterion that failed it.
    pub fn explain_decision(&self, decision: &Decision) -> String {
        let lead = match decision.outcome {
            Outcome::Allow => "allowed",
            Outcome::Deny => "denied",
            Outcome::SignIn => "sign-in needed",
        };
        match (decision.outcome, decision.reason) {
            (Outcome::Deny, None) => "denied: the policy has no allow rule".to_owned(),
            (Outcome::Deny, Some(r))
                if self
                    .rules
                    .get(r.rule())
                    .is_some_and(|i| i.action == Action::Allow) =>
            {
                let mut text = format!("denied: {} — {}", self.explain(r), self.why_false(r));
                let others = self.allow.len().saturating_sub(1);
                if others > 0 {
                    let rules = if others == 1 { "rule" } else { "rules" };
                    text.push_str(&format!(
                        "; {others} other allow {rules} did not hold either"
                    ));
                }
                text
            }
            (Outcome::SignIn, Some(r)) => format!("{lead} for {}", self.explain(r)),
            (_, Some(r)) => format!("{lead} by {}", self.explain(r)),
            (_, None) => lead.to_owned(),
        }
    }

    /// Why the criterion a deny's [`Reason`] names did not hold.
    fn why_false(&self, reason: Reason) -> &'static str {
        match self.nodes.get(reason.criterion()) {
            Some(Node::Leaf { test, .. }) => match test {
                Test::Groups(checks) if checks.iter().all(|c| matches!(c, ListCheck::Has(_))) => {
                    "not a member"
                }
                Test::Groups(_) => "the user's groups do not match",
                Test::User(_) => "another user",
                Test::Email(_) => "the user's email does not match",
                Test::Domain(_) => "the user's email domain does not match",
                Test::Claim { .. } => "the user's claim does not match",
                Test::Authenticated => "not signed in",
                Test::Method(_) => "another method",
                Test::Path(_) => "another path",
                Test::SourceIp(_) => "another address",
                Test::CorsPreflight => "not a CORS preflight",
                Test::Const(_) => "reject is never true",
                Test::Date { .. } | Test::DayOfWeek { .. } | Test::TimeOfDay { .. } => {
                    "not at this time"
                }
            },
            Some(Node::Group { op, .. }) => match op {
                Operator::And => "not all of them held",
                Operator::Nor => "all of them held",
                Operator::Or => "none of them held",
                Operator::Not => "one of them held",
            },
            None => "false",
        }
    }

    /// Appends the text of node `n`.
    fn node_text(&self, n: usize, out: &mut String) {
        match self.nodes.get(n) {
            None => out.push_str("(unknown criterion)"),
            Some(Node::Leaf { text, .. }) => out.push_str(text),
            Some(Node::Group { op, start, end }) => {
                out.push_str(match op {
                    Operator::And => "all of [",
                    Operator::Or => "any of [",
                    Operator::Not => "none of [",
                    Operator::Nor => "not all of [",
                });
                let kids = self.children.get(*start as usize..*end as usize);
                for (i, &k) in kids.unwrap_or_default().iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    self.node_text(k as usize, out);
                }
                out.push(']');
            }
        }
    }
}
