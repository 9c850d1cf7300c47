#!/usr/bin/env bash
# One-command start of the stack on WSL2 (or any Linux with Docker and an NVIDIA GPU).
#
#   scripts/start.sh [--cpu] [--monitoring] [--export] [--no-build]
#
#   --cpu         no GPU: compose.cpu.yaml (Triton on the CPU; slow)
#   --monitoring  also Prometheus (:9090) and Grafana (:3000)
#   --export      run the exporter even if models are there (official weights -> ONNX)
#   --no-build    do not (re)build the images
#
# Checks, in order: Docker and Compose work; the GPU is visible in WSL (nvidia-smi) and to
# Docker (nvidia-smi inside the Triton container); the models are exported (otherwise runs
# the exporter once). Then starts Triton, waits until it is healthy (the first start builds
# the TensorRT engines: minutes), starts the tracker, waits, and prints the URLs the
# backend must use. Environment: START_TIMEOUT_S (default 2700), WEIGHTS_DIR (./weights).
# Guide and troubleshooting: docs/deployment.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

cpu=0
monitoring=0
force_export=0
build=1
for arg in "$@"; do
    case "$arg" in
        --cpu) cpu=1 ;;
        --monitoring) monitoring=1 ;;
        --export) force_export=1 ;;
        --no-build) build=0 ;;
        -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown option: $arg (see --help)" >&2; exit 2 ;;
    esac
done

readonly MODELS=(person_detector hmr2 smpl)
readonly TIMEOUT_S="${START_TIMEOUT_S:-2700}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf '\033[31mERROR:\033[0m %s\n' "$*" >&2; exit 1; }

is_wsl() { grep -qi microsoft /proc/version 2>/dev/null; }

compose=(docker compose -f compose.yaml)
if ((cpu)); then
    compose+=(-f compose.cpu.yaml)
fi
if ((monitoring)); then
    compose+=(--profile monitoring)
fi

# ---------------------------------------------------------------- Docker and Compose
say "Checking Docker"
command -v docker >/dev/null \
    || fail "no docker command. On WSL2: Docker Desktop with WSL integration enabled for this
       distribution (Settings > Resources > WSL integration), or Docker Engine installed
       inside WSL with the NVIDIA Container Toolkit. See docs/deployment.md."
docker info >/dev/null 2>&1 \
    || fail "the Docker engine does not answer (is Docker Desktop running? or: sudo service docker start)"
compose_version="$(docker compose version --short 2>/dev/null)" \
    || fail "no 'docker compose' (Compose v2 plugin) found"
IFS=. read -r major minor _ <<<"${compose_version#v}"
if ((major < 2 || (major == 2 && minor < 24))); then
    fail "Docker Compose $compose_version is too old: 2.24 or newer is needed"
fi
echo "Docker $(docker version --format '{{.Server.Version}}'), Compose $compose_version"

# ---------------------------------------------------------------- GPU
if ((cpu)); then
    say "CPU mode: skipping the GPU checks"
else
    say "Checking the GPU"
    if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L; then
        if is_wsl; then
            fail "nvidia-smi does not work inside WSL. Install or update the NVIDIA driver on
       Windows (it provides the GPU to WSL2 via /usr/lib/wsl/lib); do NOT install a Linux
       NVIDIA driver inside WSL. Then 'wsl --shutdown' and retry. No GPU? Use --cpu."
        fi
        fail "nvidia-smi does not work: install the NVIDIA driver, or use --cpu"
    fi
fi

# ---------------------------------------------------------------- images
if ((build)); then
    say "Building the images (the first build pulls the NGC Triton image: several GB)"
    "${compose[@]}" build triton tracker
fi

if ((!cpu)); then
    say "Checking that Docker gives the GPU to the Triton container"
    docker_gpu_log="$(mktemp)"
    if ! "${compose[@]}" run --rm --no-deps --entrypoint nvidia-smi triton -L \
        >"$docker_gpu_log" 2>&1; then
        cat "$docker_gpu_log" >&2
        fail "the Triton container sees no GPU. Docker Desktop: enable the WSL2 backend (GPU
       support is built in). Docker Engine inside WSL: install the NVIDIA Container Toolkit
       and run 'sudo nvidia-ctk runtime configure --runtime=docker && sudo service docker
       restart'. See docs/deployment.md."
    fi
    cat "$docker_gpu_log"
    rm -f "$docker_gpu_log"
fi

# ---------------------------------------------------------------- models
missing=()
for model in "${MODELS[@]}"; do
    [[ -f "model_repository/$model/1/model.onnx" ]] || missing+=("$model")
done
[[ -f model_repository/smpl/1/faces.npy ]] || missing+=("smpl faces")
if ((force_export)) || ((${#missing[@]})); then
    if ((${#missing[@]})); then
        say "Models missing (${missing[*]}): running the exporter once"
    else
        say "Running the exporter"
    fi
    weights="${WEIGHTS_DIR:-./weights}"
    mkdir -p "$weights"
    HOST_UID="$(id -u)" HOST_GID="$(id -g)" \
        docker compose -f compose.yaml --profile export run --rm --build exporter \
        || fail "the export failed (see its message above). The SMPL file must be in $weights/
       (registration at https://smpl.is.tue.mpg.de); see docs/deployment.md."
elif [[ ! -f model_repository/hmr2/1/export.json ]]; then
    echo "NOTE: model_repository/ holds models that the exporter did not write (e.g. the offline"
    echo "      stand-ins of 'make models': generated HMR2 weights). For the official weights:"
    echo "      scripts/start.sh --export"
fi

# ---------------------------------------------------------------- start and wait
container_health() {
    local id
    id="$("${compose[@]}" ps -a -q "$1")"
    [[ -n "$id" ]] || { echo "absent"; return; }
    docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id"
}

wait_healthy() {
    local service="$1" started=$SECONDS next_report=$((SECONDS + 30)) state
    while true; do
        state="$(container_health "$service")"
        case "$state" in
            "running healthy") echo "$service is healthy ($((SECONDS - started)) s)"; return 0 ;;
            "running unhealthy" | restarting* | exited* | dead* | absent)
                "${compose[@]}" logs --tail 40 "$service" >&2
                fail "$service is $state (its last log lines are above)" ;;
        esac
        if ((SECONDS - started > TIMEOUT_S)); then
            "${compose[@]}" logs --tail 40 "$service" >&2
            fail "$service not healthy after $TIMEOUT_S s (START_TIMEOUT_S)"
        fi
        if ((SECONDS >= next_report)); then
            next_report=$((SECONDS + 30))
            echo "  $service: $state ($((SECONDS - started)) s) $("${compose[@]}" logs \
                --tail 1 --no-log-prefix "$service" 2>/dev/null | cut -c1-100)"
        fi
        sleep 2
    done
}

say "Starting Triton (the first start builds the TensorRT engines: this can take many minutes)"
"${compose[@]}" up -d triton
wait_healthy triton

say "Starting the tracker service"
"${compose[@]}" up -d
wait_healthy tracker

# ---------------------------------------------------------------- where to reach it
port="${TRACKER_PORT:-5000}"
ip="$(hostname -I 2>/dev/null | awk '{print $1}')"
ip="${ip:-127.0.0.1}"
say "Up"
cat <<EOF
Tracker service (legacy API):  http://$ip:$port   (POST /pose/hybrid, GET /health, GET /metrics)
  For the backend:             POSE_SERVICE_URL=http://$ip:$port
EOF
if is_wsl; then
    cat <<EOF
  From Windows also:           http://localhost:$port   (WSL localhost forwarding)
  The WSL IP ($ip) changes when WSL restarts: run this script again (or 'hostname -I')
  and update POSE_SERVICE_URL, or use http://localhost:$port from Windows.
EOF
fi
cat <<EOF
Triton:                        http://$ip:8000 (HTTP)  $ip:8001 (gRPC)  http://$ip:8002/metrics
EOF
if ((monitoring)); then
    cat <<EOF
Prometheus:                    http://$ip:9090
Grafana:                       http://$ip:3000   (dashboard "Pose tracker"; admin/admin to edit)
EOF
fi
echo "Stop: docker compose down    Logs: docker compose logs -f tracker triton"
