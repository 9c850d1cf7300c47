#!/usr/bin/env bash
# `make test-scale`: the scaled-out deployment run for real on this machine (tests/scale).
#
# It installs what it needs, idempotently: Debian's postgresql and nginx (apt-get), with
# Debian's policy-rc.d kept at "101" during the install so that neither package starts its
# system-wide service. The tests then start their own PostgreSQL cluster (initdb in a
# temporary folder, a free port), one Triton with the tiny model set, 2 API replicas, 2 job
# workers and nginx, and stop each by its PID whatever happens (pytest fixtures; every
# child also dies with the test process).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

say() { echo "scale-test: $*" >&2; }

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || { say "${missing[*]} missing and not root to install them"; exit 2; }
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    say "installing ${missing[*]} (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        >/dev/null || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi
"$PY" -m pytest tests/scale "$@"
