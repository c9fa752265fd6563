#!/usr/bin/env python3
"""`make infra-check`: the checks of infra/ that run on any machine, offline.

1. Every `.tf` under infra/terraform parses with python-hcl2 (checkov alone exits 0
   on HCL it cannot parse).
2. Terraform structure: the stages of locals.tf, their table contracts
   (`stage_tables`, names checked against lake/src/catalog.rs) and `stage_config`
   agree; every function is provided.al2023 / arm64 / bootstrap; the state machine is
   rendered from the ASL file.
3. The ASL (infra/statemachine/pipeline.asl.json): only `${<stage>_arn}` placeholders;
   valid JSON once they are replaced (by ARNs as Terraform does, by stage names as the
   local runner does); asl-validator (npm) finds it valid; every transition lands in its
   own scope, every state is reachable, names are unique; every Task invokes one stage
   with `run_date` and has the required Retry and a Catch that leads through a recording
   Pass to a Fail; the stages it references are exactly the Terraform stages, in
   pipeline order. The per-student stages run in DISTRIBUTED Maps (STANDARD children,
   MaxConcurrency, ToleratedFailurePercentage 0) over the shard items, each child
   passing run_date, run_ts (the parent's start time, from the ItemSelector), shard and
   shards, catching its own error into its output, and the Map followed by a Choice on
   the failed shards.
4. checkov over infra/terraform: no failed check, no parsing error, and every skip
   carries a reason in the HCL (`#checkov:skip=CKV_...: why`).
5. `terraform fmt -check` and `terraform validate` when a terraform binary is on PATH
   (validate in a temporary copy, after `init -backend=false`, with the providers of
   TF_PLUGIN_DIR when set; skipped with a note when the providers cannot be installed).

Exit status 1 when any check fails.
Usage: python tools/infra_check.py [--checkov PATH] [--asl-validator PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
TF_DIR = INFRA / "terraform"
ASL_PATH = INFRA / "statemachine" / "pipeline.asl.json"
CATALOG = ROOT / "lake" / "src" / "catalog.rs"

# Folders the functions write that are not catalog tables.
EXTRA_PREFIXES = {"reports"}
# Stages that write nothing (plan only reads attempts to choose the shards).
READ_ONLY_STAGES = {"plan"}
# Stages run once per student shard, as the children of a DISTRIBUTED Map.
SHARDED_STAGES = {"score_abilities", "score_topics", "features", "kpis", "churn", "growth", "segments", "reports"}

RETRY_ERRORS = {
    "Retryable.LakeIo",
    "Retryable.Timeout",
    "Lambda.ServiceException",
    "Lambda.Unknown",
    "Lambda.TooManyRequestsException",
    "States.Timeout",
}
RETRY_SHAPE = {"IntervalSeconds": 5, "BackoffRate": 2.0, "MaxAttempts": 3}
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
STAGE_PLACEHOLDER = re.compile(r"^\$\{([a-z][a-z0-9_]*)_arn\}$")
STATE_TYPES = {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"}
TERMINAL_TYPES = {"Succeed", "Fail"}


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.notes: list[str] = []

    def fail(self, msg: str) -> None:
        self.failures.append(msg)
        print(f"  FAIL {msg}")

    def note(self, msg: str) -> None:
        self.notes.append(msg)
        print(f"  note {msg}")


def unq(v):
    """python-hcl2 keeps the quotes of string literals: '"x"' -> 'x'."""
    if isinstance(v, str) and len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return v[1:-1]
    return v


def unq_deep(v):
    if isinstance(v, dict):
        return {unq(k): unq_deep(x) for k, x in v.items()}
    if isinstance(v, list):
        return [unq_deep(x) for x in v]
    return unq(v)


# ---------------------------------------------------------------- 1. HCL


def parse_hcl(rep: Report) -> dict[str, dict]:
    import hcl2  # python-hcl2, from tools/requirements-infra.txt

    docs: dict[str, dict] = {}
    files = sorted(p for p in TF_DIR.rglob("*.tf") if ".terraform" not in p.parts)
    if not files:
        rep.fail(f"no .tf file under {TF_DIR.relative_to(ROOT)}")
    for path in files:
        rel = str(path.relative_to(ROOT))
        try:
            with path.open() as f:
                docs[rel] = unq_deep(hcl2.load(f))
        except Exception as e:  # the parser raises several exception types
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            rep.fail(f"{rel}: does not parse as HCL: {first}")
    print(f"  parsed {len(docs)}/{len(files)} files with python-hcl2")
    return docs


# ---------------------------------------------------------------- 2. Terraform structure


def blocks(docs: dict[str, dict], kind: str):
    """Yields (file, block) for every top-level block of `kind` (locals, variable, ...)."""
    for rel, doc in docs.items():
        for b in doc.get(kind, []):
            yield rel, b


def resources(docs: dict[str, dict], rtype: str):
    """Yields (file, name, body) of every resource of type `rtype`."""
    for rel, doc in docs.items():
        for b in doc.get("resource", []):
            for t, named in b.items():
                if t == rtype:
                    for name, body in named.items():
                        yield rel, name, body


def catalog_tables() -> set[str]:
    text = CATALOG.read_text()
    return set(re.findall(r'pub const [A-Z_]+: &str = "([a-z_]+)";', text))


def check_terraform(docs: dict[str, dict], rep: Report) -> list[str]:
    loc: dict = {}
    for rel, b in blocks(docs, "locals"):
        for k, v in b.items():
            if k in ("stages", "stage_tables"):
                if k in loc:
                    rep.fail(f"local.{k} is defined twice")
                loc[k] = v
    stages = loc.get("stages")
    if not isinstance(stages, list) or not all(isinstance(s, str) for s in stages) or not stages:
        rep.fail("locals.tf: local.stages must be a literal list of stage names")
        return []
    if len(set(stages)) != len(stages):
        rep.fail(f"local.stages has duplicates: {stages}")
    bad = [s for s in stages if not re.fullmatch(r"[a-z][a-z0-9_]*", s)]
    if bad:
        rep.fail(f"local.stages: names must be snake_case identifiers: {bad}")
    print(f"  stages (locals.tf): {', '.join(stages)}")

    # Table contracts.
    tables = catalog_tables()
    if not tables:
        rep.fail(f"no table constant found in {CATALOG.relative_to(ROOT)}")
    known = tables | EXTRA_PREFIXES
    st = loc.get("stage_tables")
    if not isinstance(st, dict):
        rep.fail("locals.tf: local.stage_tables must be a literal map stage -> {reads, writes}")
    else:
        if set(st) != set(stages):
            rep.fail(f"local.stage_tables stages {sorted(st)} != local.stages {sorted(stages)}")
        written: set[str] = set()
        for s, rw in st.items():
            reads, writes = rw.get("reads"), rw.get("writes")
            if not isinstance(reads, list) or not isinstance(writes, list):
                rep.fail(f"local.stage_tables.{s}: reads and writes must be literal lists")
                continue
            if not writes and s not in READ_ONLY_STAGES:
                rep.fail(f"local.stage_tables.{s}: writes nothing")
            if writes and s in READ_ONLY_STAGES:
                rep.fail(f"local.stage_tables.{s}: a read-only stage writes {writes}")
            unknown = sorted(set(reads + writes) - known)
            if unknown:
                rep.fail(f"local.stage_tables.{s}: not lake tables ({CATALOG.name}): {unknown}")
            written |= set(writes)
        unwritten = sorted(tables - written)
        if unwritten:
            rep.note(f"catalog tables no stage may write: {unwritten}")

    # Per-stage settings.
    cfg = None
    for rel, b in blocks(docs, "variable"):
        if "stage_config" in b:
            cfg = b["stage_config"].get("default")
    if not isinstance(cfg, dict):
        rep.fail("variables.tf: variable stage_config needs a literal default map")
    elif set(cfg) != set(stages):
        rep.fail(f"var.stage_config default stages {sorted(cfg)} != local.stages {sorted(stages)}")
    for rel, b in blocks(docs, "variable"):
        for name, body in b.items():
            missing = [k for k in ("description", "type", "default") if k not in body]
            if missing:
                rep.fail(f"{rel}: variable {name} lacks {', '.join(missing)}")

    # Functions.
    fns = list(resources(docs, "aws_lambda_function"))
    if len(fns) != 1:
        rep.fail(f"expected one aws_lambda_function (for_each over local.stages), found {len(fns)}")
    for rel, name, body in fns:
        if "local.stages" not in str(body.get("for_each", "")):
            rep.fail(f"{rel}: aws_lambda_function.{name} must use for_each over local.stages")
        want = {"runtime": "provided.al2023", "handler": "bootstrap", "architectures": ["arm64"]}
        for k, v in want.items():
            if body.get(k) != v:
                rep.fail(f"{rel}: aws_lambda_function.{name}.{k} = {body.get(k)!r}, want {v!r}")
    sfns = list(resources(docs, "aws_sfn_state_machine"))
    if len(sfns) != 1:
        rep.fail(f"expected one aws_sfn_state_machine, found {len(sfns)}")
    for rel, name, body in sfns:
        d = str(body.get("definition", ""))
        if "templatefile(" not in d or ASL_PATH.name not in d:
            rep.fail(f"{rel}: aws_sfn_state_machine.{name} must render {ASL_PATH.name} with templatefile()")
    return stages


# ---------------------------------------------------------------- 3. ASL


def check_asl(stages: list[str], rep: Report) -> None:
    text = ASL_PATH.read_text()
    rel = str(ASL_PATH.relative_to(ROOT))
    if "%{" in text:
        rep.fail(f"{rel}: contains a '%{{' template directive")
    referenced: list[str] = []
    for m in PLACEHOLDER.finditer(text):
        full = m.group(0)
        pm = STAGE_PLACEHOLDER.match(full)
        if not pm:
            rep.fail(f"{rel}: placeholder {full} is not of the form ${{<stage>_arn}}")
        elif text[m.start() - 1] != '"' or text[m.end()] != '"':
            rep.fail(f"{rel}: placeholder {full} must be a whole JSON string")
        else:
            referenced.append(pm.group(1))

    def render(f) -> dict | None:
        out = PLACEHOLDER.sub(lambda m: f(m.group(1)[: -len("_arn")]), text)
        try:
            return json.loads(out)
        except json.JSONDecodeError as e:
            rep.fail(f"{rel}: not valid JSON after substitution: {e}")
            return None

    aws = render(lambda s: f"arn:aws:lambda:eu-west-1:123456789012:function:irtlake-{s.replace('_', '-')}")
    local = render(lambda s: s)
    if aws is None or local is None:
        return

    names: dict[str, str] = {}
    tasks: list[tuple[str, str]] = []  # (state, stage)

    def scope(states: dict, start: str, where: str, distributed: bool = False) -> None:
        if not isinstance(states, dict) or not states:
            rep.fail(f"{where}: States must be a non-empty object")
            return
        if start not in states:
            rep.fail(f"{where}: StartAt {start!r} is not a state of this scope")
        for n in states:
            if n in names:
                rep.fail(f"state name {n!r} used twice ({names[n]} and {where})")
            names[n] = where
        edges: dict[str, list[str]] = {}
        for n, s in states.items():
            edges[n] = check_state(n, s, states, where, distributed)
        seen, todo = set(), [start]
        while todo:
            n = todo.pop()
            if n in seen or n not in states:
                continue
            seen.add(n)
            todo.extend(edges.get(n, []))
        for n in states:
            if n not in seen:
                rep.fail(f"{where}: state {n!r} is unreachable")

    def check_state(n: str, s: dict, states: dict, where: str, distributed: bool) -> list[str]:
        t = s.get("Type")
        at = f"{where}/{n}"
        if t not in STATE_TYPES:
            rep.fail(f"{at}: unknown Type {t!r}")
            return []
        out: list[str] = []
        if t == "Choice":
            out += [c.get("Next") for c in s.get("Choices", [])]
            if "Default" in s:
                out.append(s["Default"])
            if not s.get("Choices"):
                rep.fail(f"{at}: Choice without Choices")
        elif t not in TERMINAL_TYPES:
            if ("Next" in s) == bool(s.get("End")):
                rep.fail(f"{at}: needs exactly one of Next or End: true")
            if "Next" in s:
                out.append(s["Next"])
        for c in s.get("Catch", []):
            out.append(c.get("Next"))
        for target in out:
            if target not in states:
                rep.fail(f"{at}: transition to {target!r}, not a state of this scope")
        if t == "Task":
            check_task(n, s, states, at, distributed)
        if t in ("Map", "Parallel"):
            check_catch(s, states, at)
        if t == "Map":
            proc = s.get("ItemProcessor") or s.get("Iterator") or {}
            if "ItemsPath" not in s:
                rep.fail(f"{at}: Map without ItemsPath")
            mode = (proc.get("ProcessorConfig") or {}).get("Mode", "INLINE")
            if mode == "DISTRIBUTED":
                check_distributed(s, proc, states, at)
            scope(proc.get("States"), proc.get("StartAt"), at, mode == "DISTRIBUTED")
        if t == "Parallel":
            for i, b in enumerate(s.get("Branches", [])):
                scope(b.get("States"), b.get("StartAt"), f"{at}[{i}]")
        if t == "Fail" and not ({"Error", "ErrorPath"} & set(s)):
            rep.fail(f"{at}: Fail state names no Error/ErrorPath")
        return [x for x in out if isinstance(x, str)]

    def check_distributed(s: dict, proc: dict, states: dict, at: str) -> None:
        """A DISTRIBUTED Map over the shard items (see the module docs)."""
        if (proc.get("ProcessorConfig") or {}).get("ExecutionType") != "STANDARD":
            rep.fail(f"{at}: ExecutionType must be STANDARD (the Lambda timeout exceeds Express's 5 minutes)")
        if s.get("ToleratedFailurePercentage") != 0:
            rep.fail(f"{at}: ToleratedFailurePercentage must be 0")
        if not isinstance(s.get("MaxConcurrency"), int) or s.get("MaxConcurrency", 0) < 1:
            rep.fail(f"{at}: MaxConcurrency must bound the shards running at once")
        if s.get("ItemsPath") != "$.shards":
            rep.fail(f"{at}: ItemsPath must be \"$.shards\"")
        want_sel = {
            "run_date.$": "$.run_date",
            "run_ts.$": "$$.Execution.StartTime",
            "shard.$": "$$.Map.Item.Value.shard",
            "shards.$": "$$.Map.Item.Value.shards",
        }
        if s.get("ItemSelector") != want_sel:
            rep.fail(f"{at}: ItemSelector must be {want_sel} (run_ts is the parent's start time)")
        if "$$.Execution" in json.dumps(proc.get("States", {})):
            rep.fail(f"{at}: a child reads $$.Execution (the child's own execution): pass it in the ItemSelector")
        if (s.get("ResultSelector") or {}).get("failed.$") != "$[?(@.error)]":
            rep.fail(f"{at}: ResultSelector must collect the failed shards: \"failed.$\": \"$[?(@.error)]\"")
        check = states.get(s.get("Next"), {})
        rules = check.get("Choices", [])
        if check.get("Type") != "Choice" or not any(
            str(r.get("Variable", "")).endswith("failed[0]") and r.get("IsPresent") is True for r in rules
        ):
            rep.fail(f"{at}: must be followed by a Choice on the failed shards (…failed[0] IsPresent)")

    def check_catch(s: dict, states: dict, at: str, distributed: bool = False) -> None:
        catches = [c for c in s.get("Catch", []) if c.get("ErrorEquals") == ["States.ALL"]]
        if not catches:
            rep.fail(f"{at}: no Catch on [\"States.ALL\"]")
            return
        c = catches[0]
        if c.get("ResultPath") != "$.error":
            rep.fail(f"{at}: Catch ResultPath must be \"$.error\"")
        rec = states.get(c.get("Next"), {})
        if rec.get("Type") != "Pass":
            rep.fail(f"{at}: Catch must lead to a Pass state recording the error")
            return
        if "$.error" not in json.dumps(rec.get("Parameters", {})) and rec.get("Parameters") is not None:
            rep.fail(f"{at}: the recording Pass {c.get('Next')!r} drops $.error")
        if distributed:
            # A child returns its error as its output (the parent's Choice fails the run
            # with it); a failed child would reach the parent as
            # States.ExceedToleratedFailureThreshold only.
            if not rec.get("End"):
                rep.fail(f"{at}: the recording Pass {c.get('Next')!r} of a Distributed Map child must end the child")
        elif states.get(rec.get("Next"), {}).get("Type") != "Fail":
            rep.fail(f"{at}: the recording Pass {c.get('Next')!r} must lead to a Fail state")

    def check_task(n: str, s: dict, states: dict, at: str, distributed: bool) -> None:
        params = s.get("Parameters") or {}
        # Placeholders are checked on the raw text; here the local rendering has the
        # stage name in their place.
        raw_fn = None
        if s.get("Resource") == LAMBDA_INVOKE:
            raw_fn = params.get("FunctionName")
            payload = params.get("Payload") or {}
            if s.get("ResultSelector") != {"summary.$": "$.Payload"}:
                rep.fail(f"{at}: ResultSelector must be {{\"summary.$\": \"$.Payload\"}}")
        else:
            raw_fn = s.get("Resource")
            payload = params
        if raw_fn not in stages:
            rep.fail(f"{at}: invokes {raw_fn!r}, not a ${{<stage>_arn}} placeholder of a Terraform stage")
        else:
            tasks.append((n, raw_fn))
        if (raw_fn in SHARDED_STAGES) != distributed:
            rep.fail(
                f"{at}: {raw_fn!r} must run "
                + ("in a DISTRIBUTED Map over the shards" if raw_fn in SHARDED_STAGES else "outside a DISTRIBUTED Map")
            )
        if distributed:
            want = {"run_date.$": "$.run_date", "run_ts.$": "$.run_ts", "shard.$": "$.shard", "shards.$": "$.shards"}
            if payload != want:
                rep.fail(f"{at}: a shard's payload must be {want}")
        if payload.get("run_date.$") != "$.run_date":
            rep.fail(f"{at}: payload must pass \"run_date.$\": \"$.run_date\"")
        ok = [
            r
            for r in s.get("Retry", [])
            if set(r.get("ErrorEquals", [])) == RETRY_ERRORS
            and all(r.get(k) == v and type(r.get(k)) is type(v) for k, v in RETRY_SHAPE.items())
        ]
        if not ok:
            rep.fail(
                f"{at}: needs a Retry on {sorted(RETRY_ERRORS)} with IntervalSeconds 5, "
                "BackoffRate 2.0, MaxAttempts 3"
            )
        check_catch(s, states, at, distributed)

    scope(local.get("States"), local.get("StartAt"), "(top)")

    # The success path, in order: must visit the stages in local.stages order.
    def path(states: dict, start: str) -> tuple[list[str], bool]:
        order, n, guard, ok = [], start, 0, False
        while n in states and guard < 1000:
            guard += 1
            s = states[n]
            t = s.get("Type")
            if t == "Task":
                order.append(s.get("Parameters", {}).get("FunctionName") or s.get("Resource"))
            elif t == "Map":
                proc = s.get("ItemProcessor") or s.get("Iterator") or {}
                order += path(proc.get("States", {}), proc.get("StartAt"))[0]
            elif t == "Parallel":
                for b in s.get("Branches", []):
                    order += path(b.get("States", {}), b.get("StartAt"))[0]
            elif t == "Succeed":
                ok = True
            if s.get("End") or t in TERMINAL_TYPES:
                ok = ok or bool(s.get("End"))
                break
            n = s.get("Default") if t == "Choice" else s.get("Next")
        return order, ok

    order, succeeds = path(local.get("States", {}), local.get("StartAt"))
    if not succeeds:
        rep.fail("the success path does not end in a Succeed state")
    if order != stages:
        rep.fail(f"stages along the success path {order} != local.stages {stages}")
    if sorted(set(referenced)) != sorted(set(stages)):
        rep.fail(
            f"ASL references {sorted(set(referenced))}, Terraform defines {sorted(set(stages))}"
            f" (missing in ASL: {sorted(set(stages) - set(referenced))},"
            f" unknown: {sorted(set(referenced) - set(stages))})"
        )
    dup = sorted({s for s in referenced if referenced.count(s) > 1})
    if dup:
        rep.fail(f"ASL invokes these stages from more than one Task: {dup}")
    print(f"  {len(names)} states, {len(tasks)} tasks; success path: {' -> '.join(order)}")


def run_asl_validator(exe: str | None, rep: Report) -> None:
    """asl-validator (npm) on the ASL with placeholders replaced by ARNs, as deployed."""
    exe = exe or shutil.which("asl-validator")
    if not exe or not Path(exe).exists() and not shutil.which(exe):
        rep.fail("asl-validator not found (make infra-check installs it; or pass --asl-validator PATH)")
        return
    text = PLACEHOLDER.sub(
        lambda m: f"arn:aws:lambda:eu-west-1:123456789012:function:irtlake-{m.group(1)[: -len('_arn')].replace('_', '-')}",
        ASL_PATH.read_text(),
    )
    with tempfile.NamedTemporaryFile("w", suffix=".asl.json", delete=False) as f:
        f.write(text)
        rendered = f.name
    try:
        proc = subprocess.run([exe, "--json-path", rendered], capture_output=True, text=True)
    finally:
        os.unlink(rendered)
    out = (proc.stdout + proc.stderr).strip().replace(rendered, str(ASL_PATH.relative_to(ROOT)))
    if proc.returncode != 0:
        rep.fail(f"asl-validator: {out}")
    else:
        print(f"  asl-validator: {out}")


# ---------------------------------------------------------------- 4. checkov


def run_checkov(checkov: str | None, rep: Report) -> None:
    exe = checkov or shutil.which("checkov")
    if not exe or not Path(exe).exists() and not shutil.which(exe):
        rep.fail("checkov not found (make infra-check installs it; or pass --checkov PATH)")
        return
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false", LOG_LEVEL="ERROR")
    # terraform and secrets: what `checkov -d infra/terraform` runs with no flags
    cmd = [exe, "-d", str(TF_DIR), "--framework", "terraform", "secrets", "--skip-download", "-o", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        rep.fail(f"checkov produced no JSON (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
        return
    reports = data if isinstance(data, list) else [data]
    if not reports or all("summary" not in r for r in reports):
        rep.fail("checkov scanned nothing (no Terraform resource found)")
        return
    total = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
    failed, skipped = [], []
    for r in reports:
        for k in total:
            total[k] += int(r.get("summary", {}).get(k, 0))
        failed += r.get("results", {}).get("failed_checks", [])
        skipped += r.get("results", {}).get("skipped_checks", [])
    version = reports[0].get("summary", {}).get("checkov_version", "?")
    print(
        f"  checkov {version}: {total['passed']} passed, {total['failed']} failed, "
        f"{total['skipped']} skipped, {total['parsing_errors']} parsing errors, "
        f"{total['resource_count']} resources"
    )
    if total["resource_count"] == 0:
        rep.fail("checkov found no resources")
    if total["parsing_errors"]:
        rep.fail(f"checkov could not parse {total['parsing_errors']} file(s)")
    for c in failed:
        lines = c.get("file_line_range", ["?", "?"])
        rep.fail(
            f"{c.get('check_id')} {c.get('check_name')}: {c.get('resource')} "
            f"(infra/terraform{c.get('file_path')}:{lines[0]}-{lines[1]})"
        )
    # Skips: one line per check and reason, with the resources it covers.
    by_reason: dict[tuple[str, str], list[str]] = {}
    for c in skipped:
        reason = (c.get("check_result", {}) or {}).get("suppress_comment", "") or ""
        key = (c.get("check_id", "?"), reason.strip())
        by_reason.setdefault(key, []).append(c.get("resource", "?"))
        if len(reason.strip()) < 15 or reason.strip().lower().startswith("no comment"):
            rep.fail(f"{c.get('check_id')} on {c.get('resource')} is skipped without a reason")
    for (cid, reason), res in sorted(by_reason.items()):
        base = sorted({re.sub(r'\[".*"\]$', "[*]", x) for x in res})
        print(f"  skip {cid} on {', '.join(base)} ({len(res)}x): {reason}")


# ---------------------------------------------------------------- 5. terraform


def run_terraform(rep: Report) -> None:
    tf = shutil.which("terraform")
    if not tf:
        rep.note("terraform not on PATH: `terraform fmt -check` and `terraform validate` skipped")
        return
    env = dict(os.environ, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")

    def quiet(text: str) -> str:
        # Drop the warning about a missing CLI configuration file.
        keep = [
            ln
            for ln in text.splitlines()
            if ln.strip() and not re.search(r"CLI configuration|terraformrc|^[╷╵│]\s*$", ln)
        ]
        return "\n".join(keep)

    fmt = subprocess.run(
        [tf, "fmt", "-check", "-recursive", "-diff", "-no-color", str(INFRA)],
        capture_output=True, text=True, env=env,
    )
    if fmt.returncode != 0:
        rep.fail(f"terraform fmt -check: not formatted (run `terraform fmt -recursive infra`):\n{quiet(fmt.stdout + fmt.stderr)}")
    else:
        print("  terraform fmt -check: ok")

    with tempfile.TemporaryDirectory(prefix="irtlake-tf-") as tmp:
        shutil.copytree(INFRA, Path(tmp) / "infra", ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
        wd = Path(tmp) / "infra" / "terraform"
        init = [tf, "init", "-backend=false", "-input=false", "-no-color"]
        plugin_dir = os.environ.get("TF_PLUGIN_DIR", "").strip()
        if plugin_dir:
            init.append(f"-plugin-dir={plugin_dir}")
        try:
            p = subprocess.run(init, capture_output=True, text=True, env=env, cwd=wd, timeout=180)
        except subprocess.TimeoutExpired:
            rep.note("terraform validate skipped: `terraform init` timed out (offline?)")
            return
        if p.returncode != 0:
            last = quiet(p.stdout + p.stderr).splitlines()[-3:]
            rep.note(
                "terraform validate skipped: `terraform init` could not install the providers "
                "(offline? set TF_PLUGIN_DIR to a provider mirror): " + " | ".join(last)
            )
            return
        v = subprocess.run(
            [tf, "validate", "-no-color"], capture_output=True, text=True, env=env, cwd=wd
        )
        if v.returncode != 0:
            rep.fail(f"terraform validate:\n{quiet(v.stdout + v.stderr)}")
        else:
            src = f"providers from {plugin_dir}" if plugin_dir else "providers from the registry"
            print(f"  terraform validate: ok ({src})")


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkov", help="checkov executable (default: checkov on PATH)")
    ap.add_argument("--asl-validator", help="asl-validator executable (default: asl-validator on PATH)")
    args = ap.parse_args()
    rep = Report()
    t0 = time.monotonic()

    def step(title: str, f, *a):
        t = time.monotonic()
        print(f"== {title}")
        r = f(*a)
        print(f"  ({time.monotonic() - t:.1f} s)")
        return r

    docs = step("HCL: parse every .tf (python-hcl2)", parse_hcl, rep)
    stages = step("Terraform: stages, table contracts, functions", check_terraform, docs, rep) if docs else []
    if stages:
        step(f"ASL: {ASL_PATH.relative_to(ROOT)}", check_asl, stages, rep)
    step("asl-validator", run_asl_validator, args.asl_validator, rep)
    step("checkov", run_checkov, args.checkov, rep)
    step("terraform fmt / validate", run_terraform, rep)

    took = time.monotonic() - t0
    if rep.failures:
        print(f"infra-check: {len(rep.failures)} failure(s) in {took:.1f} s")
        return 1
    print(f"infra-check: ok in {took:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
