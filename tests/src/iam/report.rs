//! The figures of one principal: the calls its binary made, the authorization requests they
//! need, which were allowed and by which statement, and what of its policies no call needed.

use std::collections::{BTreeMap, BTreeSet};

use super::calls::Call;
use super::{Decision, Effect, Policy, Request, StatementId, evaluate};

/// A binary's credentials: its name (`controller`), what carries its policies in the template
/// (`ControllerTaskRole`) and those policies.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub carrier: String,
    pub policies: Vec<Policy>,
}

/// A request no statement allowed, or a `Deny` refused.
#[derive(Debug, Clone)]
pub struct Denial {
    pub operation: String,
    pub request: Request,
    pub by: Option<StatementId>,
}

/// What one principal's calls came to.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// API operation → calls.
    pub calls: BTreeMap<String, usize>,
    /// Authorization requests, and how many were allowed.
    pub requests: usize,
    pub allowed: usize,
    /// IAM action → authorization requests.
    pub actions: BTreeMap<String, usize>,
    pub denied: Vec<Denial>,
    /// Allowing statement → action → requests it allowed.
    pub used: BTreeMap<StatementId, BTreeMap<String, usize>>,
    /// (statement, action, condition) → requests it allowed only because the condition's key
    /// was missing.
    pub vacuous: BTreeMap<(StatementId, String, String), usize>,
}

impl Tally {
    /// Evaluates every request of `calls` against `principal`'s policies.
    pub fn of(principal: &Principal, calls: &[Call]) -> Tally {
        let mut t = Tally::default();
        for call in calls {
            *t.calls.entry(call.operation.clone()).or_default() += 1;
            for request in &call.requests {
                t.add(principal, &call.operation, request);
            }
        }
        t
    }

    fn add(&mut self, principal: &Principal, operation: &str, request: &Request) {
        self.requests += 1;
        *self.actions.entry(request.action.clone()).or_default() += 1;
        match evaluate(&principal.policies, request) {
            Decision::Allowed { by, vacuous } => {
                self.allowed += 1;
                for id in by {
                    *self
                        .used
                        .entry(id)
                        .or_default()
                        .entry(request.action.clone())
                        .or_default() += 1;
                }
                for v in vacuous {
                    let key = (v.statement, request.action.clone(), v.condition);
                    *self.vacuous.entry(key).or_default() += 1;
                }
            }
            Decision::Denied { by } => self.denied.push(Denial {
                operation: operation.to_string(),
                request: request.clone(),
                by,
            }),
        }
    }

    /// The calls in total.
    pub fn total_calls(&self) -> usize {
        self.calls.values().sum()
    }

    /// `Allow` statements that allowed no request.
    pub fn unused_statements(&self, principal: &Principal) -> Vec<StatementId> {
        principal
            .policies
            .iter()
            .flat_map(Policy::statement_ids)
            .filter(|(id, s)| s.effect == Effect::Allow && !self.used.contains_key(id))
            .map(|(id, _)| id)
            .collect()
    }

    /// `Action` entries of used statements that named no allowed request.
    pub fn unused_actions(&self, principal: &Principal) -> Vec<(StatementId, String)> {
        let mut out = Vec::new();
        for policy in &principal.policies {
            for (id, statement) in policy.statement_ids() {
                let Some(actions) = self.used.get(&id) else {
                    continue;
                };
                let named: BTreeSet<&str> = actions
                    .keys()
                    .flat_map(|a| statement.patterns_naming(a))
                    .collect();
                out.extend(
                    statement
                        .action
                        .patterns
                        .iter()
                        .filter(|p| !statement.action.negated && !named.contains(p.as_str()))
                        .map(|p| (id.clone(), p.clone())),
                );
            }
        }
        out
    }

    /// The figures as lines for the test's output.
    pub fn lines(&self, principal: &Principal) -> Vec<String> {
        let name = &principal.name;
        let count = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut lines = vec![
            format!(
                "{name} ({}): calls made {} ({} distinct operations: {})",
                principal.carrier,
                self.total_calls(),
                self.calls.len(),
                count(&self.calls)
            ),
            format!(
                "{name}: authorization requests {} ({} distinct actions), allowed {}, denied {}",
                self.requests,
                self.actions.len(),
                self.allowed,
                self.denied.len()
            ),
        ];
        for (id, actions) in &self.used {
            lines.push(format!("{name}: statement {id} allowed {}", count(actions)));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principal() -> Principal {
        let doc = json!({"Statement": [
            {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject", "s3:AbortMultipartUpload"], "Resource": "arn:aws:s3:::b/runs/*"},
            {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}
        ]});
        Principal {
            name: "agent".into(),
            carrier: "AgentTaskRole".into(),
            policies: vec![Policy::from_json("agent", &doc)],
        }
    }

    fn call(op: &str, requests: Vec<Request>) -> Call {
        Call {
            operation: op.into(),
            requests,
        }
    }

    #[test]
    fn unused_statements_and_actions_are_named_and_denials_kept() {
        let calls = [
            call(
                "s3:GetObject",
                vec![Request::new("s3:GetObject", "arn:aws:s3:::b/runs/x")],
            ),
            call(
                "s3:PutObject",
                vec![Request::new("s3:PutObject", "arn:aws:s3:::b/runs/x")],
            ),
        ];
        let p = principal();
        let t = Tally::of(&p, &calls);
        assert_eq!((t.total_calls(), t.requests, t.allowed), (2, 2, 1));
        assert_eq!(t.denied[0].request.action, "s3:PutObject");
        assert_eq!(t.unused_statements(&p)[0].to_string(), "agent/List");
        let unused = t.unused_actions(&p);
        assert_eq!(unused.len(), 1);
        assert_eq!(unused[0].1, "s3:AbortMultipartUpload");
    }
}
