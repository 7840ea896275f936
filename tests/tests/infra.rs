//! The deployment against the contract: the agent task definition in `infra/barrage.yaml`
//! carries exactly the agent environment contract of `barrage-crds` (static values in the task
//! definition, per-run values as the controller's overrides), and no secret in its environment.

use std::collections::BTreeSet;

use barrage_crds::env::AGENT_ENV;
use barrage_system_tests::root;
use serde_yaml::Value;

fn template() -> Value {
    let text =
        std::fs::read_to_string(root().join("infra/barrage.yaml")).expect("infra/barrage.yaml");
    serde_yaml::from_str(&text).expect("the template is YAML (CloudFormation tags included)")
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_agent_task_definition_carries_exactly_the_environment_contract() {
    let t = template();
    let declared = &t["Metadata"]["Barrage::AgentEnvironment"];
    let per_run = names(&declared["PerRun"]);
    let containers = t["Resources"]["AgentTaskDefinition"]["Properties"]["ContainerDefinitions"]
        .as_sequence()
        .expect("the agent task definition has containers");
    let agent = containers
        .iter()
        .find(|c| c["Name"].as_str() == declared["Container"].as_str())
        .expect("the agent container");
    let in_task_definition: BTreeSet<String> = agent["Environment"]
        .as_sequence()
        .expect("an Environment list")
        .iter()
        .filter_map(|e| e["Name"].as_str().map(str::to_string))
        .collect();
    let contract: BTreeSet<String> = AGENT_ENV.iter().map(|v| v.name.to_string()).collect();
    let provided: BTreeSet<String> = in_task_definition.union(&per_run).cloned().collect();
    let missing: Vec<_> = contract.difference(&provided).collect();
    let extra: Vec<_> = provided.difference(&contract).collect();
    println!(
        "agent environment: {} in the task definition + {} per run = {} names; contract {}",
        in_task_definition.len(),
        per_run.len(),
        provided.len(),
        contract.len()
    );
    assert!(
        missing.is_empty(),
        "contract variables the deployment never sets: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "variables outside the contract: {extra:?}"
    );
    assert!(
        in_task_definition.is_disjoint(&per_run),
        "a per-run value is also static"
    );
    // Every required per-run variable comes from the controller, not the task definition.
    for v in AGENT_ENV.iter().filter(|v| v.required) {
        assert!(provided.contains(v.name), "{} is required", v.name);
    }
}

#[test]
fn no_secret_is_in_the_agent_environment() {
    let t = template();
    let declared = &t["Metadata"]["Barrage::AgentEnvironment"];
    let secrets = names(&declared["Secrets"]);
    let containers = t["Resources"]["AgentTaskDefinition"]["Properties"]["ContainerDefinitions"]
        .as_sequence()
        .expect("containers");
    for c in containers {
        for e in c["Environment"].as_sequence().into_iter().flatten() {
            let name = e["Name"].as_str().unwrap_or_default();
            assert!(
                !secrets.contains(name),
                "{name} is a secret and must come through `Secrets`"
            );
            let upper = name.to_ascii_uppercase();
            assert!(
                !["PASSWORD", "SECRET", "TOKEN", "CREDENTIAL"]
                    .iter()
                    .any(|w| upper.contains(w)),
                "{name} looks like a secret in `Environment`"
            );
        }
    }
}
