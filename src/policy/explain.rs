//! Stage 4, **authorize**: human text for decisions — which rule, from which source, and
//! which criterion (or operator group) decided — as methods of the compiled policy. Used
//! in logs, `portcullis check` and error pages; never on the request hot path.

use super::eval::{Decision, Outcome, Reason};
use crate::config::policy::compile::{CompiledPolicy, Node};
use crate::config::policy::ppl::Operator;

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

    /// One line for a log or `portcullis check`: the outcome and why, e.g.
    /// `denied: no allow rule matched` or `sign-in needed for allow rule 1 (policy): …`.
    pub fn explain_decision(&self, decision: &Decision) -> String {
        let lead = match decision.outcome {
            Outcome::Allow => "allowed",
            Outcome::Deny => "denied",
            Outcome::SignIn => "sign-in needed",
        };
        match (decision.outcome, decision.reason) {
            (Outcome::Deny, None) => "denied: no allow rule matched".to_owned(),
            (Outcome::SignIn, Some(r)) => format!("{lead} for {}", self.explain(r)),
            (_, Some(r)) => format!("{lead} by {}", self.explain(r)),
            (_, None) => lead.to_owned(),
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
