#!/usr/bin/env bash
# Deployment and supply-chain gates. Each gate prints one line with its counts; the script exits
# non-zero when any gate fails.
#
#   cfn-lint      infra/*.yaml                          0 errors
#   checkov       infra/ (CloudFormation) + Dockerfiles 0 failed checks; every skip carries a reason
#   hadolint      Dockerfile.controller, Dockerfile.agent  0 errors
#   infra-contract  agent task definition env == Metadata Barrage::AgentEnvironment == crds AGENT_ENV;
#                   no secret in the environment; every template Parameter has a Description
#   cargo-audit   Cargo.lock vs the offline RustSec snapshot: 0 vulnerabilities, 0 unjustified warnings
#   cargo-deny    bans licenses sources with deny.toml
#
# Usage: scripts/gates.sh [--no-install] [GATE...]      (GATE: cfn-lint checkov hadolint infra-contract audit deny)
# Environment:
#   BARRAGE_ADVISORY_DB  RustSec advisory database (default: ../shared/advisory-db relative to the repo root)
#   BARRAGE_TOOLS        where scripts/install-tools.sh keeps the tools
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

install=1
gates=()
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    cfn-lint | checkov | hadolint | infra-contract | audit | deny) gates+=("$arg") ;;
    -h | --help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "gates: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
((${#gates[@]})) || gates=(cfn-lint checkov hadolint infra-contract audit deny)

if ((install)); then
  path_line="$(bash "$ROOT/scripts/install-tools.sh" | tail -n 1)" || { echo "gates: install-tools.sh failed" >&2; exit 1; }
else
  path_line="$(BARRAGE_TOOLS="${BARRAGE_TOOLS:-}" bash -c 'echo "PATH+=${BARRAGE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/barrage/tools}/venv/bin:${BARRAGE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/barrage/tools}/cargo/bin"')"
fi
TOOL_PATH="${path_line#PATH+=}"
export PATH="$TOOL_PATH:$PATH"
PY="${TOOL_PATH%%:*}/python"
export PYTHONUNBUFFERED=1 # details (stderr) and the count line (stdout) in the order they happen

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

passed=()
failed=()
pass() { passed+=("$1"); }
fail() { failed+=("$1"); }

TEMPLATES=(infra/*.yaml)
DOCKERFILES=(Dockerfile.controller Dockerfile.agent)

gate_cfn_lint() {
  cfn-lint --format json -- "${TEMPLATES[@]}" >"$TMP/cfn-lint.json" 2>"$TMP/cfn-lint.err"
  local rc=$?
  local line
  if ! line="$("$PY" - "$TMP/cfn-lint.json" "${#TEMPLATES[@]}" <<'EOF'
import json, sys
matches = json.load(open(sys.argv[1]))
count = {"Error": 0, "Warning": 0, "Informational": 0}
for m in matches:
    count[m["Level"]] = count.get(m["Level"], 0) + 1
    loc = m["Location"]["Start"]
    print(f'  {m["Level"]} {m["Rule"]["Id"]} {m["Filename"]}:{loc["LineNumber"]}: {m["Message"]}', file=sys.stderr)
print(f'cfn-lint: {count["Error"]} errors, {count["Warning"]} warnings, {count["Informational"]} informational ({sys.argv[2]} templates)')
sys.exit(1 if count["Error"] else 0)
EOF
  )"; then
    echo "${line:-cfn-lint: could not read its output (exit $rc)}"; cat "$TMP/cfn-lint.err" >&2; return 1
  fi
  echo "$line"
  # cfn-lint's exit code is a bit set: 2 errors, 4 warnings, 8 informational; anything else is a crash.
  (( (rc & ~12) == 0 )) || { cat "$TMP/cfn-lint.err" >&2; return 1; }
}

gate_checkov() {
  # --skip-download: fully offline (no guideline or policy download). Skips are declared in the
  # templates' resource Metadata (checkov: skip: - id, comment) and in Dockerfile comments
  # (# checkov:skip=ID: reason); this gate fails a skip that has no reason.
  local args=(--skip-download --quiet --compact -o json --framework cloudformation dockerfile)
  local f
  for f in "${TEMPLATES[@]}" "${DOCKERFILES[@]}"; do args+=(-f "$f"); done
  checkov "${args[@]}" >"$TMP/checkov.json" 2>"$TMP/checkov.err"
  local rc=$?
  "$PY" - "$TMP/checkov.json" "$rc" <<'EOF'
import json, sys
try:
    data = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"checkov: could not read its output (exit {sys.argv[2]}): {e}")
    sys.exit(1)
reports = data if isinstance(data, list) else [data]
p = f = s = errors = 0
unjustified = []
for r in reports:
    summ = r.get("summary", {})
    p += summ.get("passed", 0); f += summ.get("failed", 0); s += summ.get("skipped", 0)
    errors += summ.get("parsing_errors", 0)
    res = r.get("results", {})
    for c in res.get("failed_checks", []):
        print(f'  FAILED {c["check_id"]} {c["resource"]} ({c["file_path"]}): {c["check_name"]}', file=sys.stderr)
    for c in res.get("skipped_checks", []):
        reason = (c.get("check_result", {}).get("suppress_comment") or "").strip()
        if not reason or reason.lower() == "no comment provided":
            unjustified.append(f'{c["check_id"]} {c["resource"]}')
for u in unjustified:
    print(f"  SKIP WITHOUT REASON {u}", file=sys.stderr)
print(f"checkov: {p} passed, {f} failed, {s} skipped ({len(unjustified)} without a reason), {errors} parsing errors")
sys.exit(1 if f or errors or unjustified or p == 0 else 0)
EOF
}

gate_hadolint() {
  hadolint --format json "${DOCKERFILES[@]}" >"$TMP/hadolint.json" 2>"$TMP/hadolint.err"
  "$PY" - "$TMP/hadolint.json" "${#DOCKERFILES[@]}" <<'EOF'
import json, sys
try:
    found = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"hadolint: could not read its output: {e}")
    sys.exit(1)
count = {}
for m in found:
    count[m["level"]] = count.get(m["level"], 0) + 1
    print(f'  {m["level"]} {m["code"]} {m["file"]}:{m["line"]}: {m["message"]}', file=sys.stderr)
print(f'hadolint: {count.get("error", 0)} errors, {count.get("warning", 0)} warnings, '
      f'{count.get("info", 0) + count.get("style", 0)} info/style ({sys.argv[2]} Dockerfiles)')
sys.exit(1 if count.get("error", 0) else 0)
EOF
}

gate_infra_contract() {
  # The agent task definition's `environment` holds exactly the static names of the contract, the
  # controller's overrides the per-run names, and together they are crds' AGENT_ENV: nothing missing,
  # nothing extra, and no secret among them.
  "$PY" - infra/barrage.yaml crds/src/env.rs <<'EOF'
import re, sys
from cfnlint.decode import cfn_yaml
tpl = cfn_yaml.load(sys.argv[1])
meta = tpl["Metadata"]["Barrage::AgentEnvironment"]
static, per_run, secrets = set(meta["Static"]), set(meta["PerRun"]), set(meta["Secrets"])
agent = tpl["Resources"]["AgentTaskDefinition"]["Properties"]["ContainerDefinitions"]
agent = [c for c in agent if c["Name"] == meta["Container"]][0]
env = {e["Name"] for e in agent.get("Environment", [])}
sec_prop = agent.get("Secrets", {})
sec_list = sec_prop.get("Fn::If", [None, [], []])[1] if isinstance(sec_prop, dict) else sec_prop
sec = {s["Name"] for s in sec_list}
problems = []
if env != static:
    problems.append(f"task definition environment {sorted(env)} != Metadata Static {sorted(static)}")
if static & per_run:
    problems.append(f"names both static and per-run: {sorted(static & per_run)}")
if sec != secrets:
    problems.append(f"task definition secrets {sorted(sec)} != Metadata Secrets {sorted(secrets)}")
if sec & (env | per_run):
    problems.append(f"secret names also in the environment: {sorted(sec & (env | per_run))}")
for e in agent.get("Environment", []):
    if re.search(r"(?i)password|secret|token|credential", e["Name"]):
        problems.append(f"secret-looking name in environment: {e['Name']}")
try:
    src = open(sys.argv[2]).read()
except OSError:
    src = ""
# AGENT_ENV's entries name their variable as a string literal or as a `pub const X: &str = "..."`.
consts = dict(re.findall(r'const\s+([A-Z0-9_]+)\s*:\s*&(?:\'static\s+)?str\s*=\s*"([^"]*)"', src))
m = re.search(r"const\s+AGENT_ENV\s*:[^=]*=\s*&\[(.*?)\n\];", src, re.S)
contract = set()
for ref in re.findall(r'name:\s*("[^"]*"|[A-Za-z0-9_:]+)', m.group(1) if m else ""):
    contract.add(ref.strip('"') if ref.startswith('"') else consts.get(ref.split("::")[-1], "?" + ref))
if contract:
    missing, extra = contract - (static | per_run), (static | per_run) - contract
    if missing: problems.append(f"in AGENT_ENV but set by neither the task definition nor the controller: {sorted(missing)}")
    if extra: problems.append(f"not in AGENT_ENV: {sorted(extra)}")
    source = f"crds AGENT_ENV ({len(contract)} names)"
else:
    problems.append("crds/src/env.rs: no AGENT_ENV with \"BARRAGE_...\" names found")
    source = "crds AGENT_ENV not found"
params = tpl.get("Parameters", {})
for name, p in params.items():
    if not str(p.get("Description", "")).strip():
        problems.append(f"parameter {name} has no Description")
for p in problems:
    print(f"  {p}", file=sys.stderr)
print(f"infra-contract: {len(static)} static + {len(per_run)} per-run names, {len(sec)} secrets, "
      f"{len(params)} parameters described, {len(problems)} problems, checked against {source}")
sys.exit(1 if problems else 0)
EOF
}

gate_audit() {
  local db="${BARRAGE_ADVISORY_DB:-$ROOT/../shared/advisory-db}"
  if [[ ! -d "$db/crates" ]]; then
    echo "cargo-audit: advisory database not found at $db (set BARRAGE_ADVISORY_DB)"; return 1
  fi
  # Ignored advisories, each with its reason, live in .cargo/audit.toml (read by cargo-audit itself).
  cargo audit --no-fetch --stale --db "$db" --json >"$TMP/audit.json" 2>"$TMP/audit.err"
  local rc=$?
  "$PY" - "$TMP/audit.json" "$rc" .cargo/audit.toml "$db" <<'EOF'
import json, re, sys
try:
    report = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"cargo-audit: could not read its output (exit {sys.argv[2]}): {e}")
    sys.exit(1)
try:
    ignored = re.findall(r'"(RUSTSEC-\d{4}-\d{4})"', open(sys.argv[3]).read())
except OSError:
    ignored = []
vulns = report.get("vulnerabilities", {}).get("list", [])
for v in vulns:
    a, p = v["advisory"], v["package"]
    print(f'  VULNERABILITY {a["id"]} {p["name"]} {p["version"]}: {a["title"]}', file=sys.stderr)
warnings = []
for kind, items in (report.get("warnings") or {}).items():
    for w in items:
        a = w.get("advisory") or {}
        p = w.get("package", {})
        warnings.append(kind)
        print(f'  WARNING {kind} {a.get("id", "")} {p.get("name")} {p.get("version")}: {a.get("title", "")}', file=sys.stderr)
crates = report.get("lockfile", {}).get("dependency-count", 0)
count = report.get("database", {}).get("advisory-count", 0)
print(f"cargo-audit: {crates} crates, {count} advisories in the database, {len(vulns)} vulnerabilities, "
      f"{len(warnings)} unjustified warnings, {len(ignored)} ignored with a reason (.cargo/audit.toml)")
sys.exit(1 if vulns or warnings or crates == 0 or count == 0 else 0)
EOF
}

gate_deny() {
  # --locked: never rewrite Cargo.lock (a stale lockfile fails the gate instead).
  cargo deny --format json --color never --config deny.toml --locked check --show-stats bans licenses sources \
    >"$TMP/deny.out" 2>"$TMP/deny.json"
  local rc=$?
  "$PY" - "$TMP/deny.json" "$rc" <<'EOF'
import json, sys
errors = warnings = 0
summary = None
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        if line: print(f"  {line}", file=sys.stderr)
        continue
    obj = json.loads(line)
    if obj.get("type") == "summary":
        summary = obj["fields"]
    elif obj.get("type") == "diagnostic":
        f = obj["fields"]
        sev = f.get("severity")
        if sev == "error":
            errors += 1
        elif sev == "warning":
            warnings += 1
        if sev == "error":
            print(f'  {sev} {f.get("code", "")}: {f.get("message", "")}', file=sys.stderr)
parts = []
if summary:
    for check in ("bans", "licenses", "sources"):
        s = summary.get(check, {})
        parts.append(f'{check} {s.get("errors", 0)} errors/{s.get("warnings", 0)} warnings')
print(f"cargo-deny: {errors} errors, {warnings} warnings ({', '.join(parts) or 'no summary'})")
rc = int(sys.argv[2])
sys.exit(1 if errors or rc != 0 or summary is None else 0)
EOF
}

for g in "${gates[@]}"; do
  if "gate_${g//-/_}"; then pass "$g"; else fail "$g"; fi
done

# Deliberately not the "N passed, N failed" shape: that line is how CI counts tests.
if ((${#failed[@]})); then
  echo "deploy gates FAILED: ${failed[*]} (${#passed[@]} of ${#gates[@]} gates passed)"
  exit 1
fi
echo "deploy gates OK: all ${#gates[@]} gates passed (${passed[*]})"
