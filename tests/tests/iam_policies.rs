//! The stack's IAM policies evaluated against every call the binaries make (issue 18.2, second
//! part).
//!
//! infra/barrage.yaml is deployed into a private moto server (tests/python/iam_stack.py, which
//! says what it changes for moto's gaps), and the controller, the agents and the CLI run with
//! one AssumeRole session each, of a role that carries only what the template gives that binary:
//! ControllerTaskRole, AgentTaskRole, and a role with the ClientPolicy managed policy for the
//! CLI. The flow is the real one on the real broker:
//! 1. the controller with the process launcher (the agents it starts get the agent role's
//!    session, as an ECS task gets its task role), and through the CLI (`apply`, `watch`, `get`,
//!    `get NAME`, `describe`, `report`, `delete --wait`) a LoadTest over SASL_SCRAM whose
//!    credentials are the stack's Kafka secret (encrypted with its customer-managed key) and
//!    whose topic the controller deletes after the run (`cleanup: DeleteIfCreated`), run to its
//!    report;
//! 2. the controller with the ECS launcher on the stack's own environment: a LoadTest whose
//!    agent tasks it runs (RunTask, tagged) and, after `delete`, stops.
//!
//! moto enforces IAM meanwhile (a refused call fails the flow and is listed from its log),
//! and records every request. moto evaluates Action and Resource of S3 requests only (no
//! Condition; for every other service it compares the resource "*"), so each recorded request
//! is also evaluated here, exactly, against the template's policies (tests/src/iam: Action,
//! Resource, Conditions, and the further authorizations a call needs, such as iam:PassRole for
//! RunTask or kms:Decrypt for a secret under a customer key). The test prints, per binary, the
//! calls made, the authorization requests and how many were allowed, which statement allowed
//! what, and the statements no call needed; it fails on any denied request, any statement or
//! action of a statement no call needed (except those named in [`NOT_EXERCISED`] with the
//! reason), any condition that held only because the call lacks its key (it restricts nothing
//! there), and any request signed by no binary's key. Two checks keep the checks honest: requests
//! the template promises to refuse (the lease item, a status write, another task family,
//! cluster, role or secret…) must be denied by the same evaluation, and after the flow moto must
//! refuse the agent's session a write outside `runs/` while accepting one under it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use barrage_system_tests::iam::calls::{Facts, call_of, read_recording};
use barrage_system_tests::iam::moto::PrivateMoto;
use barrage_system_tests::iam::report::{Principal, Tally};
use barrage_system_tests::iam::{Decision, Policy, Request, StatementId, evaluate};
use barrage_system_tests::operator::{lag_only, rt, succeeded_or_lag_only, text};
use barrage_system_tests::spec::{SaslMechanism, Secret, Spec};
use barrage_system_tests::{
    aws_endpoint, binary, invalid_reasons, kafka, root, run_bounded, unique,
};

const MSK: &str = "MSK IAM: kafka-cluster actions are authorized by MSK brokers on Kafka requests, not by AWS API calls; no emulator has them";
const PULL: &str = "pulling the controller image that carries the CLI: the container runtime's calls to ECR, not the CLI's";

/// Statements no call of these binaries can exercise here, with the reason.
const NOT_EXERCISED: &[(&str, &str)] = &[
    ("msk-iam/MskConnect", MSK),
    ("msk-iam/MskTopics", MSK),
    ("msk-iam/MskGroups", MSK),
    ("msk-iam/MskTransactions", MSK),
    ("ClientPolicy/EcrAuthToken", PULL),
    ("ClientPolicy/PullCliImage", PULL),
];

/// One binary's session.
#[derive(Debug, Clone)]
struct Creds {
    key: String,
    secret: String,
    token: String,
}

/// What tests/python/iam_stack.py printed, read.
struct Setup {
    outputs: BTreeMap<String, String>,
    principals: Vec<Principal>,
    creds: BTreeMap<String, Creds>,
    facts: Facts,
    secret: String,
    controller_env: BTreeMap<String, String>,
    differences: serde_json::Value,
}

fn strings(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .expect("an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect()
}

/// Each binary's principal name and what carries its policies in the template.
const CARRIERS: [(&str, &str); 3] = [
    ("controller", "ControllerTaskRole"),
    ("agent", "AgentTaskRole"),
    ("client", "ClientPolicy, a managed policy"),
];

/// Deploys the stack into `moto` (tests/python/iam_stack.py) and reads what it printed.
fn deploy(moto: &PrivateMoto, name: &str, scram: (&str, &str)) -> Setup {
    let python =
        std::env::var("BARRAGE_AWS_PYTHON").expect("BARRAGE_AWS_PYTHON (scripts/services.sh env)");
    let mut cmd = Command::new(python);
    cmd.arg(root().join("tests/python/iam_stack.py"))
        .arg(root().join("infra/barrage.yaml"))
        .args([name, scram.0, scram.1])
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_SESSION_TOKEN");
    let out = run_bounded(&mut cmd, Duration::from_secs(180));
    assert!(out.status.success(), "iam_stack.py: {}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let outputs = strings(&v["outputs"]);
    let secret = v["kafka_secret"]["arn"].as_str().unwrap().to_string();
    let text_of = |x: &serde_json::Value| x.as_str().unwrap().to_string();
    let facts = Facts {
        account: "123456789012".into(),
        partition_key: barrage_crds::items::ATTR_PK.into(),
        passed_roles: [(
            outputs["AgentTaskDefinition"].clone(),
            v["agent_task_roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(text_of)
                .collect(),
        )]
        .into(),
        secret_keys: [(secret.clone(), text_of(&v["kafka_secret"]["kms_key"]))].into(),
    };
    Setup {
        outputs,
        principals: principals(&v),
        creds: sessions(&v),
        facts,
        secret,
        controller_env: strings(&v["controller_environment"]),
        differences: v["moto_differences"].clone(),
    }
}

/// The principals with the policies iam_stack.py resolved from the template.
fn principals(v: &serde_json::Value) -> Vec<Principal> {
    CARRIERS
        .iter()
        .map(|(p, carrier)| Principal {
            name: p.to_string(),
            carrier: carrier.to_string(),
            policies: v["policies"][p]
                .as_array()
                .expect("policies")
                .iter()
                .map(|d| Policy::from_json(d["name"].as_str().unwrap(), &d["document"]))
                .collect(),
        })
        .collect()
}

/// Each principal's AssumeRole session.
fn sessions(v: &serde_json::Value) -> BTreeMap<String, Creds> {
    CARRIERS
        .iter()
        .map(|(p, _)| {
            let c = &v["credentials"][p];
            let s = |k: &str| c[k].as_str().unwrap().to_string();
            let creds = Creds {
                key: s("access_key_id"),
                secret: s("secret_access_key"),
                token: s("session_token"),
            };
            (p.to_string(), creds)
        })
        .collect()
}

/// The test's world: the private emulator, the stack, a folder.
struct World {
    moto: PrivateMoto,
    setup: Setup,
    dir: PathBuf,
}

impl World {
    /// `cmd` runs as `principal`, against the private emulator only.
    fn as_principal(&self, cmd: &mut Command, principal: &str) {
        let c = &self.setup.creds[principal];
        for var in [
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("AWS_ENDPOINT_URL", self.moto.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", &c.key)
            .env("AWS_SECRET_ACCESS_KEY", &c.secret)
            .env("AWS_SESSION_TOKEN", &c.token);
    }

    fn store_env(&self, cmd: &mut Command) {
        cmd.env(
            "BARRAGE_STORE",
            format!("dynamodb://{}", self.setup.outputs["TableName"]),
        )
        .env(
            "BARRAGE_BLOBS",
            format!("s3://{}", self.setup.outputs["BucketName"]),
        )
        .env("BARRAGE_LOG_FORMAT", "compact");
    }

    /// `barrage ARGS` as the CLI's principal.
    fn cli(&self, args: &[&str], limit: Duration) -> Output {
        let mut cmd = Command::new(binary("barrage"));
        cmd.args(args);
        self.store_env(&mut cmd);
        self.as_principal(&mut cmd, "client");
        run_bounded(&mut cmd, limit)
    }

    fn cli_ok(&self, args: &[&str]) -> Output {
        let out = self.cli(args, Duration::from_secs(60));
        assert!(out.status.success(), "barrage {args:?}: {}", text(&out));
        out
    }

    fn status(&self, name: &str) -> serde_json::Value {
        let out = self.cli_ok(&["get", name, "-o", "json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON")["status"].clone()
    }

    fn wait_status(
        &self,
        name: &str,
        what: &str,
        limit: Duration,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.status(name);
            if ok(&s) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "loadtest/{name}: no {what} within {limit:?}: {s}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The agent program the process launcher starts: `barrage-agent` with the agent role's
    /// session in place of the controller's (ECS gives each task its task role's).
    fn agent_wrapper(&self) -> PathBuf {
        let c = &self.setup.creds["agent"];
        let path = self.dir.join("barrage-agent-as-agent-role");
        let script = format!(
            "#!/bin/sh\n# The agent task role's session, as ECS gives it to an agent task.\nexport AWS_ACCESS_KEY_ID='{}' AWS_SECRET_ACCESS_KEY='{}' AWS_SESSION_TOKEN='{}'\nexec '{}' \"$@\"\n",
            c.key,
            c.secret,
            c.token,
            binary("barrage-agent").display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// A controller as the controller's principal, logging to `DIR/controller-ID.log`.
    fn controller(&self, id: &str, args: &[&str], env: &BTreeMap<String, String>) -> Controller {
        let log = std::fs::File::create(self.dir.join(format!("controller-{id}.log"))).unwrap();
        let mut cmd = Command::new(binary("barrage"));
        cmd.args([
            "controller",
            "--resync",
            "3s",
            "--lease-duration",
            "6s",
            "--id",
            id,
        ])
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
        self.store_env(&mut cmd);
        cmd.envs(env)
            .env("BARRAGE_LOG_FORMAT", "compact")
            .env("BARRAGE_METRICS_ADDR", "off")
            .env("BARRAGE_AGENT_HEARTBEAT", "1s");
        self.as_principal(&mut cmd, "controller");
        Controller(Some(cmd.spawn().expect("the controller starts")))
    }

    /// Agent processes of this stack's table still alive (none once the flows are done).
    fn live_agents(&self) -> Vec<u32> {
        let marker = format!(
            "BARRAGE_STORE=dynamodb://{}",
            self.setup.outputs["TableName"]
        );
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let env = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let vars: Vec<String> = env
                .split(|b| *b == 0)
                .map(|v| String::from_utf8_lossy(v).to_string())
                .collect();
            if vars.contains(&marker) && vars.iter().any(|v| v.starts_with("BARRAGE_SLOT=")) {
                found.push(pid);
            }
        }
        found
    }

    /// The last lines of every log in the folder (controllers, agents, moto).
    fn logs(&self) -> String {
        let mut s = String::new();
        let agents = self.dir.join("agents");
        for dir in [self.dir.as_path(), agents.as_path()] {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "log") {
                    let t = std::fs::read_to_string(&p).unwrap_or_default();
                    let tail: Vec<&str> = t.lines().rev().take(25).collect();
                    s.push_str(&format!("--- {} (tail)\n", p.display()));
                    for l in tail.into_iter().rev() {
                        s.push_str(l);
                        s.push('\n');
                    }
                }
            }
        }
        s
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for pid in self.live_agents() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// A running controller; stopped when dropped (a failing test leaves none behind).
struct Controller(Option<Child>);

impl Controller {
    fn stop(mut self) {
        if let Some(child) = self.0.take() {
            stop(child);
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            stop(child);
        }
    }
}

/// SIGTERM, then up to 30 s for a graceful exit (the lease released), then SIGKILL.
fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A SASL/SCRAM LoadTest of two agents whose credentials are the secret `secret` and whose
/// topic the controller deletes after the run.
fn sasl_spec(name: &str, bootstrap: &str, secret: &str) -> String {
    Spec::new(name, name, bootstrap)
        .sasl(
            SaslMechanism::ScramSha256,
            None,
            Secret::SecretsManagerArn(secret.to_string()),
        )
        .partitions(2)
        .delete_if_created()
        .secs(5)
        .agents(2)
        .yaml()
}

/// Flow 1: the process launcher, a SASL run to its report through every client command.
fn sasl_run_to_its_report(w: &World, sasl_bootstrap: &str) {
    let wrapper = w.agent_wrapper();
    let env: BTreeMap<String, String> = [(
        "BARRAGE_AGENT_LOG_DIR".to_string(),
        w.dir.join("agents").display().to_string(),
    )]
    .into();
    let controller = w.controller(
        "iam-process",
        &[
            "--launcher",
            "process",
            "--agent-binary",
            wrapper.to_str().unwrap(),
        ],
        &env,
    );
    let name = unique("iam-sasl");
    let file = w.dir.join("sasl.yaml");
    std::fs::write(&file, sasl_spec(&name, sasl_bootstrap, &w.setup.secret)).unwrap();
    w.cli_ok(&["apply", "-f", file.to_str().unwrap()]);
    let watched = w.cli(
        &["watch", &name, "--timeout", "150s"],
        Duration::from_secs(180),
    );
    let stdout = String::from_utf8_lossy(&watched.stdout).to_string();
    let lagged = watched.status.code() == Some(3) && lag_only(&invalid_reasons(&stdout));
    assert!(
        watched.status.success() || lagged,
        "watch {name}: {}\n{}",
        text(&watched),
        w.logs()
    );
    let listed = w.cli_ok(&["get"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&name));
    assert!(
        succeeded_or_lag_only(&w.status(&name)),
        "{}",
        w.status(&name)
    );
    w.cli_ok(&["describe", &name]);
    let reports = w.dir.join("reports");
    w.cli_ok(&["report", &name, "--out", reports.to_str().unwrap()]);
    assert!(
        reports.join("report.json").exists(),
        "report.json downloaded"
    );
    w.wait_status(&name, "topicGone", Duration::from_secs(60), |s| {
        s["topicGone"] == true
    });
    w.cli_ok(&["delete", &name, "--wait", "--timeout", "60s"]);
    controller.stop();
    println!(
        "iam: flow 1: loadtest/{name} over SASL_SCRAM ran to its report, its topic deleted, the record removed"
    );
}

/// Flow 2: the ECS launcher on the stack's own controller environment: agent tasks run, then
/// stopped by a delete.
fn ecs_tasks_run_and_stopped(w: &World, bootstrap: &str) {
    let controller = w.controller("iam-ecs", &[], &w.setup.controller_env);
    let name = unique("iam-ecs");
    let spec = Spec::new(&name, &name, bootstrap)
        .existing_topic()
        .agents(2)
        .interval(10)
        .yaml();
    let file = w.dir.join("ecs.yaml");
    std::fs::write(&file, spec).unwrap();
    w.cli_ok(&["apply", "-f", file.to_str().unwrap()]);
    w.wait_status(
        &name,
        "two launched agent tasks",
        Duration::from_secs(60),
        |s| s["agents"]["launched"].as_u64() >= Some(2),
    );
    w.cli_ok(&["delete", &name, "--wait", "--timeout", "90s"]);
    controller.stop();
    println!(
        "iam: flow 2: loadtest/{name}: two agent tasks run by the ECS launcher, stopped and the record removed after the delete"
    );
}

/// The recorded calls per principal (by access key); panics on a request no binary signed.
fn calls_by_principal(
    w: &World,
    recording: &str,
) -> BTreeMap<String, Vec<barrage_system_tests::iam::calls::Call>> {
    let by_key: BTreeMap<&str, &str> = w
        .setup
        .creds
        .iter()
        .map(|(p, c)| (c.key.as_str(), p.as_str()))
        .collect();
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    let mut strangers = Vec::new();
    for rec in read_recording(recording) {
        let Some(key) = rec.access_key() else {
            assert!(
                rec.url.contains("/moto-api/"),
                "an unsigned request: {} {}",
                rec.method,
                rec.url
            );
            continue;
        };
        match by_key.get(key) {
            Some(p) => out
                .entry(p.to_string())
                .or_default()
                .push(call_of(&rec, &w.setup.facts)),
            None => strangers.push(format!("{key}: {} {}", rec.method, rec.url)),
        }
    }
    assert!(
        strangers.is_empty(),
        "requests signed by no binary's key: {strangers:#?}"
    );
    out
}

/// Why `id` cannot be exercised here, if it is one of [`NOT_EXERCISED`].
fn excuse(id: &StatementId) -> Option<&'static str> {
    NOT_EXERCISED
        .iter()
        .find(|(s, _)| *s == id.to_string())
        .map(|(_, why)| *why)
}

/// What must not be: denials, unused statements or actions, vacuous conditions.
fn findings(principal: &Principal, t: &Tally) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let name = &principal.name;
    for d in &t.denied {
        problems.push(format!(
            "{name}: {} needs {} on {} (context {:?}): denied{}",
            d.operation,
            d.request.action,
            d.request.resource,
            d.request.context,
            d.by.as_ref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_else(|| " (no statement allows it)".into())
        ));
    }
    for id in t.unused_statements(principal) {
        match excuse(&id) {
            Some(why) => notes.push(format!("{name}: statement {id} not exercised: {why}")),
            None => problems.push(format!(
                "{name}: statement {id} allowed no call: no call needs it"
            )),
        }
    }
    for (id, action) in t.unused_actions(principal) {
        problems.push(format!(
            "{name}: statement {id} grants {action}, which no call needed"
        ));
    }
    for ((id, action, condition), n) in &t.vacuous {
        problems.push(format!(
            "{name}: statement {id} allowed {action} ({n} requests) through {condition}, which a {action} request never carries: the condition restricts nothing there"
        ));
    }
    (problems, notes)
}

/// The private moto, the stack and its sessions, for one test.
fn world() -> Option<(World, String, String)> {
    let (Some(_), Some(bootstrap)) = (aws_endpoint(), kafka()) else {
        return None;
    };
    let sasl = match std::env::var("BARRAGE_KAFKA_SASL_BOOTSTRAP") {
        Ok(v) if !v.is_empty() => v,
        _ => {
            let msg = "no SASL listener: BARRAGE_KAFKA_SASL_BOOTSTRAP is not set (scripts/services.sh up; eval \"$(scripts/services.sh env)\")";
            assert!(
                std::env::var("BARRAGE_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "{msg}"
            );
            eprintln!("skipped: {msg}");
            return None;
        }
    };
    let python = PathBuf::from(std::env::var("BARRAGE_AWS_PYTHON").expect("BARRAGE_AWS_PYTHON"));
    let dir = std::env::temp_dir().join(unique("barrage-iam"));
    std::fs::create_dir_all(dir.join("agents")).unwrap();
    let moto = PrivateMoto::start(&python, &dir);
    let user = std::env::var("BARRAGE_KAFKA_SASL_SCRAM_USERNAME")
        .unwrap_or_else(|_| "barrage-scram".into());
    let password = std::env::var("BARRAGE_KAFKA_SASL_SCRAM_PASSWORD")
        .unwrap_or_else(|_| "barrage-scram-secret".into());
    let stack = unique("barrage-iam").replace('_', "-");
    let setup = deploy(&moto, &stack, (&user, &password));
    println!(
        "iam: stack {stack} deployed into a private moto at {} (folder {})",
        moto.endpoint(),
        dir.display()
    );
    println!(
        "iam: moto's own copy of the policies differs from the template in: {}",
        setup.differences
    );
    Some((World { moto, setup, dir }, bootstrap, sasl))
}

/// Each principal's figures printed; what must not be, as messages.
fn evaluate_recording(w: &World, recording: &str) -> Vec<String> {
    let calls = calls_by_principal(w, recording);
    let mut problems = Vec::new();
    for principal in &w.setup.principals {
        let t = Tally::of(
            principal,
            calls.get(&principal.name).map_or(&[][..], Vec::as_slice),
        );
        for line in t.lines(principal) {
            println!("iam: {line}");
        }
        let statements = principal
            .policies
            .iter()
            .map(|p| p.statements.len())
            .sum::<usize>();
        let (unused, excused): (Vec<StatementId>, Vec<StatementId>) = t
            .unused_statements(principal)
            .into_iter()
            .partition(|id| excuse(id).is_none());
        let unused: Vec<String> = unused
            .iter()
            .map(ToString::to_string)
            .chain(
                t.unused_actions(principal)
                    .iter()
                    .map(|(id, a)| format!("{id} (its {a})")),
            )
            .collect();
        println!(
            "iam: {}: statements used {} of {statements}; unused: {}; not exercised here: {}",
            principal.name,
            t.used.len(),
            list_or_none(&unused),
            list_or_none(&excused.iter().map(ToString::to_string).collect::<Vec<_>>()),
        );
        let (p, notes) = findings(principal, &t);
        for n in notes {
            println!("iam: {n}");
        }
        problems.extend(p);
    }
    problems
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// The stack's resources the promised refusals name.
struct Names {
    table: String,
    bucket: String,
    cluster: String,
    agent_td: String,
    secret: String,
    key: String,
    agent_role: String,
}

const OTHER_SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:other-AbCdEf";

impl Names {
    fn of(setup: &Setup) -> Names {
        let out = &setup.outputs;
        let first = |m: &BTreeMap<String, Vec<String>>| m.values().flatten().next().cloned();
        Names {
            table: format!(
                "arn:aws:dynamodb:us-east-1:123456789012:table/{}",
                out["TableName"]
            ),
            bucket: out["BucketName"].clone(),
            cluster: out["ClusterArn"].clone(),
            agent_td: out["AgentTaskDefinition"].clone(),
            secret: setup.secret.clone(),
            key: setup
                .facts
                .secret_keys
                .values()
                .next()
                .cloned()
                .unwrap_or_default(),
            agent_role: first(&setup.facts.passed_roles).unwrap_or_default(),
        }
    }

    fn item(&self, action: &str, pk: &str, attrs: &[&str]) -> Request {
        Request::new(action, self.table.clone())
            .with("dynamodb:LeadingKeys", [pk])
            .with("dynamodb:Attributes", attrs.to_vec())
    }

    fn object(&self, action: &str, key: &str) -> Request {
        Request::new(action, format!("arn:aws:s3:::{}/{key}", self.bucket))
    }

    fn run(&self, td: &str, cluster: &str) -> Request {
        Request::new("ecs:RunTask", td).with("ecs:cluster", [cluster])
    }

    fn pass(&self, role: &str, to: &str) -> Request {
        Request::new("iam:PassRole", role).with("iam:PassedToService", [to])
    }
}

/// What an agent must not do, as the template's comments promise.
fn agent_refusals(n: &Names) -> Vec<(&'static str, Request)> {
    vec![
        (
            "read the lease item",
            n.item("dynamodb:GetItem", "lease#controller", &[]),
        ),
        (
            "write the lease item",
            n.item("dynamodb:PutItem", "lease#controller", &["pk", "sk", "doc"]),
        ),
        (
            "set a LoadTest's status",
            n.item("dynamodb:PutItem", "lt#x", &["pk", "sk", "status"]),
        ),
        (
            "update an item",
            n.item("dynamodb:UpdateItem", "lt#x", &["pk", "sk", "doc"]),
        ),
        (
            "delete an item",
            n.item("dynamodb:DeleteItem", "lt#x", &["pk", "sk"]),
        ),
        (
            "scan the table",
            Request::new("dynamodb:Scan", n.table.clone()),
        ),
        (
            "read a blob",
            n.object("s3:GetObject", "runs/x/report/report.json"),
        ),
        ("write outside runs/", n.object("s3:PutObject", "other/x")),
        (
            "read another secret",
            Request::new("secretsmanager:GetSecretValue", OTHER_SECRET),
        ),
    ]
}

/// What the CLI must not do.
fn client_refusals(n: &Names) -> Vec<(&'static str, Request)> {
    vec![
        (
            "write the lease item",
            n.item("dynamodb:PutItem", "lease#controller", &["pk", "sk"]),
        ),
        (
            "delete an item",
            n.item("dynamodb:DeleteItem", "lt#x", &["pk", "sk"]),
        ),
        (
            "write a blob",
            n.object("s3:PutObject", "runs/x/report/report.json"),
        ),
        ("run a task", n.run(&n.agent_td, &n.cluster)),
        (
            "read the Kafka secret",
            Request::new("secretsmanager:GetSecretValue", n.secret.clone()),
        ),
    ]
}

/// What the controller must not do.
fn controller_refusals(n: &Names) -> Vec<(&'static str, Request)> {
    let other_cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/other";
    vec![
        (
            "run another family",
            n.run(&n.agent_td.replace("-agent:", "-other:"), &n.cluster),
        ),
        ("run in another cluster", n.run(&n.agent_td, other_cluster)),
        (
            "pass another role",
            n.pass(
                "arn:aws:iam::123456789012:role/admin",
                "ecs-tasks.amazonaws.com",
            ),
        ),
        (
            "pass the agent role to another service",
            n.pass(&n.agent_role, "lambda.amazonaws.com"),
        ),
        ("write outside runs/", n.object("s3:PutObject", "other/x")),
        (
            "read another secret",
            Request::new("secretsmanager:GetSecretValue", OTHER_SECRET),
        ),
        (
            "decrypt with the key directly",
            Request::new("kms:Decrypt", n.key.clone()),
        ),
    ]
}

/// Every promised refusal is a denial under the deployed policies.
fn refusals_hold(w: &World) -> Vec<String> {
    let n = Names::of(&w.setup);
    let mut refusals = Vec::new();
    for (name, list) in [
        ("agent", agent_refusals(&n)),
        ("client", client_refusals(&n)),
        ("controller", controller_refusals(&n)),
    ] {
        refusals.extend(list.into_iter().map(|(what, r)| (name, what, r)));
    }
    let mut problems = Vec::new();
    for (name, what, request) in &refusals {
        let principal = w
            .setup
            .principals
            .iter()
            .find(|p| p.name == *name)
            .expect("a principal");
        if let Decision::Allowed { by, .. } = evaluate(&principal.policies, request) {
            problems.push(format!("{name} may {what}: {request:?} allowed by {by:?}"));
        }
    }
    println!(
        "iam: promised refusals: {} of {} denied by the policies (agent {}, client {}, controller {})",
        refusals.len() - problems.len(),
        refusals.len(),
        refusals.iter().filter(|r| r.0 == "agent").count(),
        refusals.iter().filter(|r| r.0 == "client").count(),
        refusals.iter().filter(|r| r.0 == "controller").count(),
    );
    problems
}

/// moto enforced meanwhile: with the agent's session a write outside runs/ is refused (403)
/// and one inside is accepted.
fn moto_enforces(w: &World) -> Vec<String> {
    let c = &w.setup.creds["agent"];
    let put = |key: &str| {
        rt().block_on(async {
            let creds = aws_sdk_s3::config::Credentials::new(
                &c.key,
                &c.secret,
                Some(c.token.clone()),
                None,
                "iam-test",
            );
            let conf = aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .endpoint_url(w.moto.endpoint())
                .credentials_provider(creds)
                .force_path_style(true)
                .build();
            aws_sdk_s3::Client::from_conf(conf)
                .put_object()
                .bucket(&w.setup.outputs["BucketName"])
                .key(key)
                .body(b"probe".to_vec().into())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| e.raw_response().map(|r| r.status().as_u16()))
        })
    };
    let outside = put("other/probe");
    let inside = put("runs/probe/probe");
    println!(
        "iam: moto with the agent's session: PutObject other/probe {outside:?}, runs/probe/probe {inside:?}"
    );
    if outside == Err(Some(403)) && inside.is_ok() {
        Vec::new()
    } else {
        vec![format!(
            "moto did not enforce the agent's S3 statement: outside runs/ {outside:?}, inside {inside:?}"
        )]
    }
}

#[test]
fn every_call_of_each_binary_is_allowed_by_its_policies_and_every_statement_is_needed() {
    let Some((w, bootstrap, sasl)) = world() else {
        return;
    };
    w.moto.enforce_iam(true);
    w.moto.record();
    sasl_run_to_its_report(&w, &sasl);
    ecs_tasks_run_and_stopped(&w, &bootstrap);
    let recording = w.moto.stop_recording();
    let refused = w.moto.answered(403);
    let mut problems = moto_enforces(&w);
    w.moto.enforce_iam(false);
    if !refused.is_empty() {
        problems.push(format!(
            "moto refused {} requests of the flows (403): {refused:#?}",
            refused.len()
        ));
    }
    problems.extend(evaluate_recording(&w, &recording));
    problems.extend(refusals_hold(&w));
    assert!(
        problems.is_empty(),
        "least privilege not shown:\n{}",
        problems.join("\n")
    );
}
