//! The workspace's crates and the one direction their dependencies point (README "Repository
//! layout"): read from `cargo metadata`, so a new edge against the grain fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use barrage_system_tests::root;
use serde_json::Value;

/// Each workspace crate and the workspace crates it may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("barrage-crds", &[]),
    ("barrage-store", &["barrage-crds"]),
    ("barrage-exposition", &[]),
    ("barrage-kafka", &["barrage-crds", "barrage-store"]),
    (
        "barrage-agent",
        &[
            "barrage-crds",
            "barrage-store",
            "barrage-kafka",
            "barrage-exposition",
        ],
    ),
    (
        "barrage-operator",
        &[
            "barrage-crds",
            "barrage-store",
            "barrage-kafka",
            "barrage-exposition",
        ],
    ),
    (
        "barrage",
        &[
            "barrage-crds",
            "barrage-store",
            "barrage-kafka",
            "barrage-agent",
            "barrage-operator",
        ],
    ),
];

/// Workspace crates by name, with the workspace crates each depends on (normal dependencies).
fn workspace_edges() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str())
                .filter(|d| names.contains(*d))
                .map(str::to_string)
                .collect();
            (p["name"].as_str().unwrap_or_default().to_string(), deps)
        })
        .collect()
}

#[test]
fn every_crate_depends_only_on_the_crates_below_it() {
    let edges = workspace_edges();
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(name, deps)| (*name, deps.iter().copied().collect()))
        .collect();
    let mut problems = Vec::new();
    for (name, deps) in &edges {
        if name == "barrage-system-tests" {
            continue;
        }
        let Some(may) = allowed.get(name.as_str()) else {
            problems.push(format!(
                "{name}: not in the layout (add it to README and here)"
            ));
            continue;
        };
        for d in deps.iter().filter(|d| !may.contains(d.as_str())) {
            problems.push(format!("{name} -> {d}: against the layout"));
        }
        println!("{name} -> {deps:?}");
    }
    assert!(problems.is_empty(), "{problems:#?}");
    for name in allowed.keys() {
        assert!(
            edges.contains_key(*name),
            "{name} is in the layout but not the workspace"
        );
    }
}
