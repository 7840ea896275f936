//! # A small IAM policy evaluator (issue 18.2: the stack's policies evaluated)
//!
//! The identity-based policies of one principal, evaluated against authorization requests
//! (action, resource, request context) with the logic AWS documents: an applicable `Deny`
//! wins, else an applicable `Allow` allows, else the request is implicitly denied. A statement
//! applies when its action, its resource and every one of its conditions match.
//!
//! It knows what `infra/barrage.yaml` uses, and refuses (panics naming it) anything else, so
//! the test never passes on a policy it does not understand:
//! - `Effect`, `Action` / `NotAction`, `Resource` / `NotResource`, with `*` and `?` wildcards
//!   (actions compared without case, resources with case);
//! - `Condition` operators `StringEquals`, `StringNotEquals`, `StringLike`, `StringNotLike`,
//!   `ArnEquals`, `ArnLike`, `ArnNotEquals`, `ArnNotLike`, `Bool`, each with `IfExists` and
//!   with the set qualifiers `ForAllValues:` / `ForAnyValue:`. Operators AND together, keys of
//!   one operator AND together, the values of one key OR together. A key the request does not
//!   carry fails a positive operator and satisfies a negated one or an `IfExists`;
//!   `ForAllValues` holds on a missing or empty key, `ForAnyValue` fails on it.
//!
//! A condition that holds only because the request lacks its key (`ForAllValues` or
//! `IfExists` on a key the call does not send) restricts nothing for that call: such a
//! holding is reported as *vacuous* ([`Decision::Allowed`]), so a test can name a statement
//! whose condition promises more than it enforces.
//!
//! Not covered (the template uses none): policy variables, resource-based policies (the bucket
//! policy's transport rules), permission boundaries, session policies, SCPs.
//!
//! [`calls`] turns recorded HTTP requests into the authorization requests AWS makes for them;
//! [`report`] tallies them per principal (allowed, denied, statements used and unused);
//! [`moto`] runs the private emulator the test records them from.

pub mod calls;
pub mod moto;
pub mod report;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// One policy document with its name (`controller`, `kafka-secret`, `ClientPolicy`…).
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub statements: Vec<Statement>,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Patterns of `Action` / `Resource`, or of `NotAction` / `NotResource` (`negated`).
#[derive(Debug, Clone)]
pub struct Patterns {
    pub patterns: Vec<String>,
    pub negated: bool,
}

/// One statement.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: String,
    pub effect: Effect,
    pub action: Patterns,
    pub resource: Patterns,
    pub conditions: Vec<Condition>,
}

/// The comparison of a condition, without its qualifier and `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringNotEquals,
    StringLike,
    StringNotLike,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Bool,
}

/// `ForAllValues:` or `ForAnyValue:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    ForAllValues,
    ForAnyValue,
}

/// One key of one condition operator, with its values.
#[derive(Debug, Clone)]
pub struct Condition {
    pub operator: Operator,
    pub qualifier: Option<Qualifier>,
    pub if_exists: bool,
    pub key: String,
    pub values: Vec<String>,
}

/// One authorization request: what AWS checks for (part of) one API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `service:Action`, e.g. `dynamodb:PutItem`.
    pub action: String,
    /// The resource ARN, or `*` for actions without resource-level permissions.
    pub resource: String,
    /// Condition keys the request carries, each with its values (several for multivalued keys
    /// such as `dynamodb:LeadingKeys`).
    pub context: BTreeMap<String, Vec<String>>,
}

impl Request {
    /// A request without context.
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Request {
        Request {
            action: action.into(),
            resource: resource.into(),
            context: BTreeMap::new(),
        }
    }

    /// The same request with `key` set to `values`.
    pub fn with<S: Into<String>>(mut self, key: &str, values: impl IntoIterator<Item = S>) -> Self {
        self.context.insert(
            key.to_string(),
            values.into_iter().map(Into::into).collect(),
        );
        self
    }
}

/// A statement by policy and `Sid`: `controller/Records`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatementId {
    pub policy: String,
    pub sid: String,
}

impl fmt::Display for StatementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.policy, self.sid)
    }
}

/// A condition that held only because the request lacks its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vacuous {
    pub statement: StatementId,
    /// E.g. `ForAllValues:StringLike dynamodb:LeadingKeys`.
    pub condition: String,
}

/// What the policies decide for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by these statements (each applies); `vacuous` lists their conditions that held
    /// only because the request lacks the key.
    Allowed {
        by: Vec<StatementId>,
        vacuous: Vec<Vacuous>,
    },
    /// Denied by this `Deny` statement, or (`None`) because no statement allows it.
    Denied { by: Option<StatementId> },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

/// How one condition held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holding {
    Holds,
    Vacuously,
    Fails,
}

impl Policy {
    /// Reads a policy document (`{"Version", "Statement": [...]}`); panics naming any element
    /// or operator the evaluator does not know.
    pub fn from_json(name: &str, doc: &Value) -> Policy {
        let statements = match &doc["Statement"] {
            Value::Array(list) => list.iter().map(|s| Statement::from_json(name, s)).collect(),
            one @ Value::Object(_) => vec![Statement::from_json(name, one)],
            other => panic!("policy {name}: Statement is {other}"),
        };
        Policy {
            name: name.to_string(),
            statements,
        }
    }

    /// Every statement with its id.
    pub fn statement_ids(&self) -> impl Iterator<Item = (StatementId, &Statement)> {
        self.statements.iter().map(|s| (s.id(&self.name), s))
    }
}

/// A string or a list of strings as a list.
fn strings(v: &Value, what: &str) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) => list
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                other => panic!("{what}: {other} is not a string"),
            })
            .collect(),
        Value::Bool(b) => vec![b.to_string()],
        other => panic!("{what}: {other} is not a string or a list"),
    }
}

const STATEMENT_ELEMENTS: &[&str] = &[
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

impl Statement {
    fn from_json(policy: &str, v: &Value) -> Statement {
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("policy {policy}: a statement is {v}"));
        if let Some(k) = obj
            .keys()
            .find(|k| !STATEMENT_ELEMENTS.contains(&k.as_str()))
        {
            panic!("policy {policy}: the evaluator does not know the statement element {k}");
        }
        let sid = obj
            .get("Sid")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("policy {policy}: every statement needs a Sid to be named"))
            .to_string();
        let what = format!("{policy}/{sid}");
        let effect = match obj.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => panic!("{what}: Effect {other:?}"),
        };
        Statement {
            action: patterns(obj, "Action", &what),
            resource: patterns(obj, "Resource", &what),
            conditions: obj
                .get("Condition")
                .map(|c| conditions(c, &what))
                .unwrap_or_default(),
            sid,
            effect,
        }
    }

    /// Its id in `policy`.
    pub fn id(&self, policy: &str) -> StatementId {
        StatementId {
            policy: policy.to_string(),
            sid: self.sid.clone(),
        }
    }

    /// The `Action` patterns that name `action` (empty for `NotAction`).
    pub fn patterns_naming(&self, action: &str) -> Vec<&str> {
        if self.action.negated {
            return Vec::new();
        }
        self.action
            .patterns
            .iter()
            .filter(|p| glob(&p.to_ascii_lowercase(), &action.to_ascii_lowercase()))
            .map(String::as_str)
            .collect()
    }

    /// Whether it applies to `request`, and its conditions that held vacuously.
    fn applies(&self, request: &Request) -> Option<Vec<String>> {
        let action = self.action.matches(&request.action, true);
        let resource = self.resource.matches(&request.resource, false);
        if !(action && resource) {
            return None;
        }
        let mut vacuous = Vec::new();
        for c in &self.conditions {
            match c.holds(&request.context) {
                Holding::Fails => return None,
                Holding::Vacuously => vacuous.push(c.label()),
                Holding::Holds => {}
            }
        }
        Some(vacuous)
    }
}

fn patterns(obj: &serde_json::Map<String, Value>, element: &str, what: &str) -> Patterns {
    let not = format!("Not{element}");
    match (obj.get(element), obj.get(&not)) {
        (Some(v), None) => Patterns {
            patterns: strings(v, what),
            negated: false,
        },
        (None, Some(v)) => Patterns {
            patterns: strings(v, what),
            negated: true,
        },
        _ => panic!("{what}: exactly one of {element} and {not} must be set"),
    }
}

impl Patterns {
    fn matches(&self, value: &str, ignore_case: bool) -> bool {
        let any = self.patterns.iter().any(|p| {
            if ignore_case {
                glob(&p.to_ascii_lowercase(), &value.to_ascii_lowercase())
            } else {
                glob(p, value)
            }
        });
        any != self.negated
    }
}

fn conditions(v: &Value, what: &str) -> Vec<Condition> {
    let blocks = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: Condition is {v}"));
    let mut out = Vec::new();
    for (name, keys) in blocks {
        let (qualifier, rest) = match name.split_once(':') {
            Some(("ForAllValues", rest)) => (Some(Qualifier::ForAllValues), rest),
            Some(("ForAnyValue", rest)) => (Some(Qualifier::ForAnyValue), rest),
            Some((q, _)) => panic!("{what}: the evaluator does not know the qualifier {q}"),
            None => (None, name.as_str()),
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let operator = operator(base)
            .unwrap_or_else(|| panic!("{what}: the evaluator does not know the operator {name}"));
        let keys = keys
            .as_object()
            .unwrap_or_else(|| panic!("{what}: {name} is {keys}"));
        for (key, values) in keys {
            out.push(Condition {
                operator,
                qualifier,
                if_exists,
                key: key.clone(),
                values: strings(values, what),
            });
        }
    }
    out
}

fn operator(name: &str) -> Option<Operator> {
    Some(match name {
        "StringEquals" => Operator::StringEquals,
        "StringNotEquals" => Operator::StringNotEquals,
        "StringLike" => Operator::StringLike,
        "StringNotLike" => Operator::StringNotLike,
        "ArnEquals" => Operator::ArnEquals,
        "ArnLike" => Operator::ArnLike,
        "ArnNotEquals" => Operator::ArnNotEquals,
        "ArnNotLike" => Operator::ArnNotLike,
        "Bool" => Operator::Bool,
        _ => return None,
    })
}

impl Operator {
    fn negated(self) -> bool {
        matches!(
            self,
            Operator::StringNotEquals
                | Operator::StringNotLike
                | Operator::ArnNotEquals
                | Operator::ArnNotLike
        )
    }

    /// Whether `value` matches `pattern` under the positive form of this operator.
    fn matches(self, pattern: &str, value: &str) -> bool {
        match self {
            Operator::StringEquals | Operator::StringNotEquals => pattern == value,
            Operator::StringLike | Operator::StringNotLike => glob(pattern, value),
            Operator::ArnEquals
            | Operator::ArnLike
            | Operator::ArnNotEquals
            | Operator::ArnNotLike => arn_matches(pattern, value),
            Operator::Bool => pattern.eq_ignore_ascii_case(value),
        }
    }
}

impl Condition {
    /// `ForAllValues:StringLike dynamodb:LeadingKeys`.
    pub fn label(&self) -> String {
        let q = match self.qualifier {
            Some(Qualifier::ForAllValues) => "ForAllValues:",
            Some(Qualifier::ForAnyValue) => "ForAnyValue:",
            None => "",
        };
        let e = if self.if_exists { "IfExists" } else { "" };
        format!("{q}{:?}{e} {}", self.operator, self.key)
    }

    /// Whether one value of the request satisfies this condition's values.
    fn satisfied_by(&self, value: &str) -> bool {
        let any = self.values.iter().any(|p| self.operator.matches(p, value));
        any != self.operator.negated()
    }

    fn holds(&self, context: &BTreeMap<String, Vec<String>>) -> Holding {
        let values = context.get(&self.key).filter(|v| !v.is_empty());
        let Some(values) = values else {
            return match self.qualifier {
                Some(Qualifier::ForAllValues) => Holding::Vacuously,
                Some(Qualifier::ForAnyValue) => Holding::Fails,
                None if self.if_exists => Holding::Vacuously,
                None if self.operator.negated() => Holding::Holds,
                None => Holding::Fails,
            };
        };
        let ok = match self.qualifier {
            Some(Qualifier::ForAllValues) => values.iter().all(|v| self.satisfied_by(v)),
            Some(Qualifier::ForAnyValue) | None => values.iter().any(|v| self.satisfied_by(v)),
        };
        if ok { Holding::Holds } else { Holding::Fails }
    }
}

/// Evaluates `request` against every statement of `policies`.
pub fn evaluate(policies: &[Policy], request: &Request) -> Decision {
    let mut by = Vec::new();
    let mut vacuous = Vec::new();
    for policy in policies {
        for (id, statement) in policy.statement_ids() {
            let Some(held) = statement.applies(request) else {
                continue;
            };
            if statement.effect == Effect::Deny {
                return Decision::Denied { by: Some(id) };
            }
            vacuous.extend(held.into_iter().map(|condition| Vacuous {
                statement: id.clone(),
                condition,
            }));
            by.push(id);
        }
    }
    if by.is_empty() {
        Decision::Denied { by: None }
    } else {
        Decision::Allowed { by, vacuous }
    }
}

/// IAM's wildcard match: `*` any run of characters (`:` and `/` included), `?` any one.
pub fn glob(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// `ArnEquals` / `ArnLike`: each of the six `:`-separated parts matched on its own.
fn arn_matches(pattern: &str, value: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let v: Vec<&str> = value.splitn(6, ':').collect();
    p.len() == 6 && v.len() == 6 && p.iter().zip(&v).all(|(p, v)| glob(p, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(statements: Value) -> Vec<Policy> {
        vec![Policy::from_json(
            "p",
            &json!({"Version": "2012-10-17", "Statement": statements}),
        )]
    }

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/t";

    fn records() -> Vec<Policy> {
        policy(json!([{
            "Sid": "Records", "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Scan"], "Resource": TABLE,
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["lt#*"]}}
        }]))
    }

    #[test]
    fn wildcards_match_any_run_and_any_one_character() {
        assert!(glob("runs/*", "runs/a/b/c"));
        assert!(glob("task/c/*", "task/c/0123"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(!glob("runs/*", "other/runs/x"));
        assert!(glob("*", ""));
        assert!(glob("lt#*", "lt#"));
        assert!(!glob("lt#*", "lease#controller"));
    }

    #[test]
    fn a_leading_key_outside_the_pattern_is_denied_and_one_inside_is_allowed() {
        let get =
            |pk: &str| Request::new("dynamodb:GetItem", TABLE).with("dynamodb:LeadingKeys", [pk]);
        assert!(evaluate(&records(), &get("lt#demo")).is_allowed());
        assert_eq!(
            evaluate(&records(), &get("lease#controller")),
            Decision::Denied { by: None }
        );
    }

    #[test]
    fn a_scan_sends_no_leading_key_so_for_all_values_holds_vacuously() {
        let decision = evaluate(&records(), &Request::new("dynamodb:Scan", TABLE));
        let Decision::Allowed { vacuous, .. } = decision else {
            panic!("allowed: {decision:?}");
        };
        assert_eq!(
            vacuous[0].condition,
            "ForAllValues:StringLike dynamodb:LeadingKeys"
        );
        assert_eq!(vacuous[0].statement.to_string(), "p/Records");
    }

    #[test]
    fn a_missing_key_fails_a_plain_condition_and_satisfies_if_exists_and_negations() {
        let p = |op: &str| {
            policy(
                json!([{"Sid": "S", "Effect": "Allow", "Action": "ecs:ListTasks", "Resource": "*",
                "Condition": {op: {"ecs:cluster": "arn:aws:ecs:us-east-1:1:cluster/c"}}}]),
            )
        };
        let bare = Request::new("ecs:ListTasks", "*");
        assert!(!evaluate(&p("ArnEquals"), &bare).is_allowed());
        assert!(evaluate(&p("ArnEqualsIfExists"), &bare).is_allowed());
        assert!(evaluate(&p("ArnNotEquals"), &bare).is_allowed());
        let other = bare
            .clone()
            .with("ecs:cluster", ["arn:aws:ecs:us-east-1:1:cluster/d"]);
        assert!(!evaluate(&p("ArnEquals"), &other).is_allowed());
        let same = bare.with("ecs:cluster", ["arn:aws:ecs:us-east-1:1:cluster/c"]);
        assert!(evaluate(&p("ArnEquals"), &same).is_allowed());
    }

    #[test]
    fn for_all_values_needs_every_value_in_the_set() {
        let p = policy(
            json!([{"Sid": "W", "Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE,
            "Condition": {"ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk", "doc", "ttl"]}}}]),
        );
        let put = |attrs: &[&str]| {
            Request::new("dynamodb:PutItem", TABLE).with("dynamodb:Attributes", attrs.to_vec())
        };
        assert!(evaluate(&p, &put(&["pk", "sk", "doc"])).is_allowed());
        assert!(!evaluate(&p, &put(&["pk", "sk", "status"])).is_allowed());
    }

    #[test]
    fn an_explicit_deny_wins_over_an_allow() {
        let p = policy(json!([
            {"Sid": "A", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Sid": "D", "Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
        ]));
        assert!(evaluate(&p, &Request::new("s3:GetObject", "arn:aws:s3:::b/k")).is_allowed());
        assert_eq!(
            evaluate(&p, &Request::new("s3:PutObject", "arn:aws:s3:::b/k")),
            Decision::Denied {
                by: Some(StatementId {
                    policy: "p".into(),
                    sid: "D".into()
                })
            }
        );
    }

    #[test]
    fn actions_match_without_case_and_resources_with_case() {
        let p = policy(
            json!([{"Sid": "S", "Effect": "Allow", "Action": "S3:getobject", "Resource": "arn:aws:s3:::b/runs/*"}]),
        );
        assert!(evaluate(&p, &Request::new("s3:GetObject", "arn:aws:s3:::b/runs/x")).is_allowed());
        assert!(!evaluate(&p, &Request::new("s3:GetObject", "arn:aws:s3:::b/Runs/x")).is_allowed());
    }

    #[test]
    #[should_panic(expected = "does not know the operator NumericLessThan")]
    fn an_unknown_operator_is_refused() {
        policy(
            json!([{"Sid": "S", "Effect": "Allow", "Action": "s3:*", "Resource": "*",
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}}]),
        );
    }
}
