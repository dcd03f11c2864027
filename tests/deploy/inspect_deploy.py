"""Reads the files under deploy/ for tests/deploy/check.sh.

Each subcommand either checks structure (prints one line per problem, exits 1 if any) or
materialises what a pod or the systemd service would see — its files and its
environment — under a scratch directory, so that `portcullis check` can run on exactly
that. Runs with the PyYAML of tests/deploy/.venv.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path

import yaml

PROBLEMS: list[str] = []


def problem(msg: str) -> None:
    PROBLEMS.append(msg)


def finish() -> None:
    for p in PROBLEMS:
        print(f"  {p}", file=sys.stderr)
    sys.exit(1 if PROBLEMS else 0)


# --- Kubernetes ----------------------------------------------------------------------


def kustomization_files(kdir: Path) -> list[Path]:
    kust = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    return [kdir / r for r in kust.get("resources", [])]


def load_manifests(kdir: Path) -> list[dict]:
    docs = []
    for f in kustomization_files(kdir):
        for d in yaml.safe_load_all(f.read_text()):
            if d:
                d["__file__"] = f.name
                docs.append(d)
    return docs


def find(docs: list[dict], kind: str, name: str | None = None) -> dict | None:
    for d in docs:
        if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name):
            return d
    return None


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in dockerfile_instructions(path):
        if ins[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def dockerfile_json(stage: list[tuple[str, str]], word: str):
    for w, rest in stage:
        if w == word:
            try:
                return json.loads(rest)
            except json.JSONDecodeError:
                return rest
    return None


def config_arg(args: list[str]) -> str | None:
    for i, a in enumerate(args):
        if a in ("-c", "--config") and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--config="):
            return a.split("=", 1)[1]
    return None


def port_of(addr: str) -> int | None:
    m = re.search(r":(\d+)$", str(addr))
    return int(m.group(1)) if m else None


def k8s_structure(kdir: Path, dockerfile: Path) -> None:
    kust = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    listed = set(kust.get("resources", []))
    present = {p.name for p in kdir.glob("*.yaml")} - {"kustomization.yaml"}
    if listed != present:
        problem(f"kustomization.yaml resources {sorted(listed)} != files {sorted(present)}")
    docs = load_manifests(kdir)

    dep = find(docs, "Deployment", "portcullis")
    cm = find(docs, "ConfigMap", "portcullis-config")
    secret = find(docs, "Secret", "portcullis")
    if not (dep and cm and secret):
        problem("need Deployment portcullis, ConfigMap portcullis-config and Secret portcullis")
        return
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    if spec.get("replicas") != 3:
        problem("Deployment: replicas must be 3")
    if not selects(spec["selector"]["matchLabels"], pod_labels):
        problem("Deployment: selector does not match the pod labels")
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        problem("Deployment: pod securityContext.runAsNonRoot must be true")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problem("Deployment: seccompProfile must be RuntimeDefault")
    if not pod.get("topologySpreadConstraints") and not pod.get("affinity", {}).get(
        "podAntiAffinity"
    ):
        problem("Deployment: needs topologySpreadConstraints or podAntiAffinity")
    c = pod["containers"][0]
    csc = c.get("securityContext", {})
    for key, want in [
        ("allowPrivilegeEscalation", False),
        ("readOnlyRootFilesystem", True),
    ]:
        if csc.get(key) is not want:
            problem(f"Deployment: container securityContext.{key} must be {want}")
    if csc.get("capabilities", {}).get("drop") != ["ALL"]:
        problem("Deployment: capabilities.drop must be [ALL]")
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for what in ("cpu", "memory"):
            if what not in res.get(part, {}):
                problem(f"Deployment: resources.{part}.{what} missing")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
        hg = c.get(probe, {}).get("httpGet", {})
        if hg.get("path") != path:
            problem(f"Deployment: {probe} must be httpGet {path}")
        if hg.get("port") not in ports and hg.get("port") not in ports.values():
            problem(f"Deployment: {probe} port {hg.get('port')!r} is not a container port")
    grace = pod.get("terminationGracePeriodSeconds", 30)

    # The configuration the pods will read.
    config = yaml.safe_load(cm["data"]["config.yaml"])
    if config.get("databroker_storage_type") != "redis":
        problem("config.yaml: databroker_storage_type must be redis")
    if config.get("idp_provider") != "okta":
        problem("config.yaml: the example IdP must be okta")
    routes = config.get("routes", [])
    if len(routes) < 2 or not any(r.get("policy_files") or r.get("policy") for r in routes):
        problem("config.yaml: needs two routes, one with policy_files or policy")
    if port_of(config.get("address", ":443")) != ports.get("https"):
        problem("config.yaml address port != the container port `https`")
    if "http_redirect_addr" in config and port_of(config["http_redirect_addr"]) != ports.get(
        "http"
    ):
        problem("config.yaml http_redirect_addr port != the container port `http`")
    shutdown = str(config.get("timeout_shutdown", "30s"))
    m = re.fullmatch(r"(\d+)s", shutdown)
    if m and int(m.group(1)) >= grace:
        problem("terminationGracePeriodSeconds must exceed timeout_shutdown")

    # Secret and ConfigMap references.
    skeys = set((secret.get("stringData") or {}) | (secret.get("data") or {}))
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref and ref["name"] == "portcullis" and ref["key"] not in skeys:
            problem(f"env {e['name']}: Secret portcullis has no key {ref['key']}")
    for v in pod.get("volumes", []):
        if "configMap" in v:
            for item in v["configMap"].get("items", []):
                if item["key"] not in cm["data"]:
                    problem(f"volume {v['name']}: ConfigMap has no key {item['key']}")

    # The image: its user and its default command.
    stages = dockerfile_stages(dockerfile)
    final = stages[-1] if stages else []
    user = next((rest for w, rest in final if w == "USER"), "")
    if str(psc.get("runAsUser")) != user.split(":")[0]:
        problem(f"runAsUser {psc.get('runAsUser')} != the image's USER {user!r}")
    args = (c.get("command") or []) + (c.get("args") or [])
    if not args:
        args = dockerfile_json(final, "CMD") or []
    cfg = config_arg(args)
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    if not cfg or str(Path(cfg).parent) not in mounts:
        problem(f"the config path {cfg!r} is not in a mounted volume")

    # Service, PDB, NetworkPolicy select what they should.
    svc = find(docs, "Service", "portcullis")
    if not svc or not selects(svc["spec"]["selector"], pod_labels):
        problem("Service portcullis does not select the proxy pods")
    else:
        for p in svc["spec"]["ports"]:
            if p["targetPort"] not in ports and p["targetPort"] not in ports.values():
                problem(f"Service port {p['name']}: targetPort is not a container port")
    pdb = find(docs, "PodDisruptionBudget")
    if not pdb or not selects(pdb["spec"]["selector"]["matchLabels"], pod_labels):
        problem("the PodDisruptionBudget does not select the proxy pods")
    elif not (pdb["spec"].get("minAvailable") == 2 or pdb["spec"].get("maxUnavailable") == 1):
        problem("the PodDisruptionBudget must keep 2 of 3 (minAvailable 2 / maxUnavailable 1)")

    # Redis: a StatefulSet with persistence behind a headless Service the connection
    # string names.
    sts = find(docs, "StatefulSet")
    if not sts:
        problem("no Redis StatefulSet")
        return
    rpod = sts["spec"]["template"]["spec"]
    rc = rpod["containers"][0]
    if not rc["image"].startswith("redis:7"):
        problem("Redis image must be redis:7")
    rargs = " ".join((rc.get("command") or []) + (rc.get("args") or []))
    if "--appendonly yes" not in rargs:
        problem("Redis must run with --appendonly yes")
    if not sts["spec"].get("volumeClaimTemplates"):
        problem("Redis StatefulSet needs a volumeClaimTemplate")
    hsvc = find(docs, "Service", sts["spec"]["serviceName"])
    if not hsvc or hsvc["spec"].get("clusterIP") != "None":
        problem("Redis StatefulSet's serviceName must be a headless Service")
    elif not selects(hsvc["spec"]["selector"], sts["spec"]["template"]["metadata"]["labels"]):
        problem("the headless Service does not select the Redis pod")
    conn = (secret.get("stringData") or {}).get("DATABROKER_STORAGE_CONNECTION_STRING", "")
    m = re.match(r"rediss?://(?:[^@/]*@)?([^:/]+):(\d+)", conn)
    if not m or not hsvc or m.group(1) != hsvc["metadata"]["name"]:
        problem("the Secret's connection string does not name the Redis Service")
    elif int(m.group(2)) != hsvc["spec"]["ports"][0]["port"]:
        problem("the Secret's connection string has the wrong Redis port")
    for e in rc.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref and ref["key"] not in skeys:
            problem(f"Redis env {e['name']}: Secret portcullis has no key {ref['key']}")
    netpol = find(docs, "NetworkPolicy")
    if netpol:
        if not selects(
            netpol["spec"]["podSelector"]["matchLabels"],
            sts["spec"]["template"]["metadata"]["labels"],
        ):
            problem("the NetworkPolicy does not select the Redis pod")
        peers = [f["podSelector"]["matchLabels"] for f in netpol["spec"]["ingress"][0]["from"]]
        if not any(selects(p, pod_labels) for p in peers):
            problem("the NetworkPolicy does not admit the proxy pods")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of earlier variables; $$ is a literal $."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        value,
    )


def k8s_materialise(
    kdir: Path, dockerfile: Path, root: Path, dummies: Path, mode: str
) -> None:
    """Lays out the proxy pod's files under `root` and writes its environment.

    mode `dummy`: secret values come from the files in `dummies` (named by key);
    mode `placeholders`: the example Secret's own values, unedited.
    """
    docs = load_manifests(kdir)
    dep = find(docs, "Deployment", "portcullis")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]

    def secret_value(name: str, key: str) -> str | None:
        s = find(docs, "Secret", name)
        if s is None:
            problem(f"Secret {name} is not among the manifests")
            return None
        values = dict(s.get("stringData") or {})
        if key not in values:
            return None
        if mode == "placeholders":
            return values[key]
        f = dummies / key
        if not f.exists():
            problem(f"no dummy value for Secret key {key}: teach tests/deploy/check.sh")
            return None
        return f.read_text()

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = c.get("volumeMounts", [])
    for m in mounts:
        v = volumes[m["name"]]
        target = root / m["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        if "configMap" in v:
            cm = find(docs, "ConfigMap", v["configMap"]["name"])
            items = v["configMap"].get("items") or [
                {"key": k, "path": k} for k in cm["data"]
            ]
            for it in items:
                dest = target / it["path"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(cm["data"][it["key"]])
        elif "secret" in v:
            name = v["secret"]["secretName"]
            if find(docs, "Secret", name):
                s = find(docs, "Secret", name)
                for k in (s.get("stringData") or {}):
                    (target / k).write_text(secret_value(name, k) or "")
            else:
                # Made outside these manifests (kubectl create secret tls, cert-manager).
                src = dummies / name
                if not src.is_dir():
                    problem(f"no dummy files for the external Secret {name}")
                    continue
                for f in src.iterdir():
                    (target / f.name).write_bytes(f.read_bytes())
        elif "emptyDir" in v:
            pass
        else:
            problem(f"volume {m['name']}: unsupported kind for this check")

    env: dict[str, str] = {}
    for src in c.get("envFrom", []):
        if "secretRef" in src:
            s = find(docs, "Secret", src["secretRef"]["name"])
            for k in (s.get("stringData") or {}) if s else {}:
                val = secret_value(src["secretRef"]["name"], k)
                if val is not None:
                    env[src.get("prefix", "") + k] = val
    for e in c.get("env", []):
        if "value" in e:
            val = expand(str(e["value"]), env)
            for m in mounts:
                mp = m["mountPath"].rstrip("/") + "/"
                if val.startswith(mp):
                    val = str(root / val.lstrip("/"))
            env[e["name"]] = val
            continue
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            val = secret_value(ref["name"], ref["key"])
            if val is None and not ref.get("optional"):
                problem(f"env {e['name']}: no value")
            if val is not None:
                env[e["name"]] = val
            continue
        ref = e.get("valueFrom", {}).get("configMapKeyRef")
        if ref:
            env[e["name"]] = find(docs, "ConfigMap", ref["name"])["data"][ref["key"]]
            continue
        problem(f"env {e['name']}: unsupported source for this check")

    args = (c.get("command") or []) + (c.get("args") or [])
    if not args:
        args = dockerfile_json(dockerfile_stages(dockerfile)[-1], "CMD") or []
    cfg = root / config_arg(args).lstrip("/")
    write_env(root, env)
    print(cfg)


def write_env(root: Path, env: dict[str, str]) -> None:
    with open(root / ".env0", "w") as f:
        for k, v in env.items():
            f.write(f"{k}={v}\0")
    (root / ".names").write_text("".join(f"{k}\n" for k in env))


# --- systemd -------------------------------------------------------------------------


def unit_entries(unit: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) in file order; repeated keys kept."""
    out = []
    section = ""
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


REQUIRED_UNIT = {
    "ProtectSystem": "strict",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
    "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "KillSignal": "SIGTERM",
}


def systemd_structure(unit: Path) -> None:
    entries = unit_entries(unit)
    svc = [(k, v) for s, k, v in entries if s == "Service"]
    first = {}
    for k, v in svc:
        first.setdefault(k, v)
    if not any(s == "Install" and k == "WantedBy" for s, k, _ in entries):
        problem("[Install] WantedBy= missing")
    for k, want in REQUIRED_UNIT.items():
        if first.get(k) != want:
            problem(f"{k}={want} missing (found {first.get(k)!r})")
    if first.get("DynamicUser") != "yes" and not first.get("User"):
        problem("needs DynamicUser=yes or a dedicated User=")
    fams = set(first.get("RestrictAddressFamilies", "").split())
    if not fams or not fams <= {"AF_UNIX", "AF_INET", "AF_INET6"}:
        problem("RestrictAddressFamilies= must be a subset of AF_UNIX AF_INET AF_INET6")
    filters = [v for k, v in svc if k == "SystemCallFilter"]
    if "@system-service" not in filters:
        problem("SystemCallFilter=@system-service missing")
    if first.get("Restart") not in ("on-failure", "always", "on-abnormal"):
        problem("Restart= policy missing")
    m = re.fullmatch(r"(\d+)s?", first.get("TimeoutStopSec", ""))
    if not m or int(m.group(1)) <= 30:
        problem("TimeoutStopSec= must exceed timeout_shutdown (30s)")
    start = shlex.split(first.get("ExecStart", ""))
    pre = shlex.split(first.get("ExecStartPre", ""))
    if len(pre) < 2 or pre[1] != "check":
        problem("ExecStartPre= must run `portcullis check`")
    if not start or not pre or pre[0] != start[0]:
        problem("ExecStartPre= and ExecStart= must run the same binary")
    if config_arg(pre) != config_arg(start) or not config_arg(start):
        problem("ExecStartPre= must check the --config that ExecStart= runs")
    creds = {}
    for k, v in svc:
        if k == "LoadCredential":
            cid, _, path = v.partition(":")
            creds[cid] = path
            if not path.startswith("/"):
                problem(f"LoadCredential={v}: give an absolute path")
    used = set()
    for k, v in svc:
        if k != "Environment":
            continue
        name, _, value = v.partition("=")
        if "%d/" in value:
            cid = value.split("%d/", 1)[1]
            used.add(cid)
            if cid not in creds:
                problem(f"Environment={v}: no LoadCredential={cid}")
            if not name.endswith("_FILE"):
                problem(f"Environment={v}: a credential path belongs in a *_FILE variable")
    for cid in creds:
        if cid not in used:
            problem(f"LoadCredential={cid} is never used by an Environment= line")


def systemd_materialise(unit: Path, config: Path, root: Path, dummies: Path) -> None:
    """The service's view: credentials under root/credentials, its config, its env."""
    entries = [(k, v) for s, k, v in unit_entries(unit) if s == "Service"]
    credir = root / "credentials"
    credir.mkdir(parents=True, exist_ok=True)
    for k, v in entries:
        if k == "LoadCredential":
            cid = v.partition(":")[0]
            f = dummies / cid
            if not f.exists():
                problem(f"no dummy value for credential {cid}: teach tests/deploy/check.sh")
                continue
            (credir / cid).write_bytes(f.read_bytes())
    env = {}
    for k, v in entries:
        if k == "Environment":
            for assignment in shlex.split(v):
                name, _, value = assignment.partition("=")
                env[name] = value.replace("%d", str(credir))
    start = shlex.split(next(v for k, v in entries if k == "ExecStart"))
    cfg = root / config_arg(start).lstrip("/")
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(config.read_text())
    write_env(root, env)
    print(cfg)


# --- Dockerfile ----------------------------------------------------------------------


def dockerfile_structure(path: Path) -> None:
    stages = dockerfile_stages(path)
    if len(stages) < 2:
        problem("not multi-stage")
        return
    build, final = stages[0], stages[-1]
    m = re.match(r"(\S+)\s+AS\s+(\S+)", build[0][1], re.I)
    if not m or not m.group(1).startswith("rust:"):
        problem("the first stage must be FROM rust:… AS <name>")
        return
    build_name = m.group(2)
    if not any(w == "RUN" and "cargo build --release --locked" in r for w, r in build):
        problem("the build stage must run cargo build --release --locked")
    if final[0][1].startswith("rust:"):
        problem("the final stage must not be the Rust toolchain image")
    if not any(w == "COPY" and f"--from={build_name}" in r for w, r in final):
        problem("the final stage must COPY --from the build stage")
    users = [r for w, r in final if w == "USER"]
    uid = users[-1].split(":")[0] if users else ""
    if not uid.isdigit() or int(uid) == 0:
        problem(f"the final stage needs a numeric non-root USER (found {users!r})")
    env = {}
    for w, r in final:
        if w == "ENV" and "=" in r:
            for assignment in shlex.split(r):
                k, _, v = assignment.partition("=")
                env[k] = v
    checks = [
        re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), r)
        for w, r in final
        if w == "HEALTHCHECK"
    ]
    if not any("/healthz" in c for c in checks):
        problem("the final stage needs a HEALTHCHECK on /healthz")
    if not any(w == "EXPOSE" and "443" in r.split() for w, r in final):
        problem("EXPOSE 443 missing")
    if dockerfile_json(final, "ENTRYPOINT") != ["/usr/local/bin/portcullis"]:
        problem('ENTRYPOINT ["/usr/local/bin/portcullis"] missing')
    if dockerfile_json(final, "CMD") != ["--config", "/etc/portcullis/config.yaml"]:
        problem('CMD ["--config", "/etc/portcullis/config.yaml"] missing')


def dockerfile_stub(path: Path) -> None:
    """Prints, as JSON, what the dependency layer copies (the COPY that brings Cargo.toml
    and Cargo.lock) and the shell commands of the RUN after it, less `cargo build` and
    `rm` steps: enough to lay out the stub crate outside an image build."""
    build = dockerfile_stages(path)[0]
    for i, (w, r) in enumerate(build):
        if w == "COPY" and "Cargo.toml" in r and "Cargo.lock" in r:
            run = build[i + 1]
            if run[0] != "RUN":
                break
            sources = [a for a in r.split()[:-1] if not a.startswith("--")]
            steps = [s.strip() for s in run[1].split("&&")]
            keep = [s for s in steps if not s.startswith(("cargo build", "rm "))]
            print(json.dumps({"copy": sources, "run": " && ".join(keep)}))
            return
    problem("no RUN after COPY Cargo.toml Cargo.lock")


def dockerfile_healthcheck(path: Path) -> None:
    """Prints the final stage's HEALTHCHECK command as one shell command line."""
    for w, r in dockerfile_stages(path)[-1]:
        if w == "HEALTHCHECK":
            cmd = r[r.index("CMD") + 3 :].strip()
            try:
                argv = json.loads(cmd)
            except json.JSONDecodeError:
                print(cmd)  # the shell form
                return
            print(shlex.join(argv))
            return
    problem("no HEALTHCHECK")


def main() -> None:
    cmd, *args = sys.argv[1:]
    p = [Path(a) for a in args]
    if cmd == "k8s-files":
        for f in kustomization_files(p[0]):
            print(f)
    elif cmd == "k8s-structure":
        k8s_structure(p[0], p[1])
    elif cmd == "k8s-materialise":
        k8s_materialise(p[0], p[1], p[2], p[3], args[4])
    elif cmd == "systemd-structure":
        systemd_structure(p[0])
    elif cmd == "systemd-materialise":
        systemd_materialise(p[0], p[1], p[2], p[3])
    elif cmd == "dockerfile-structure":
        dockerfile_structure(p[0])
    elif cmd == "dockerfile-healthcheck":
        dockerfile_healthcheck(p[0])
    elif cmd == "dockerfile-stub":
        dockerfile_stub(p[0])
    else:
        sys.exit(f"unknown subcommand {cmd}")
    finish()


if __name__ == "__main__":
    os.umask(0o077)
    main()
