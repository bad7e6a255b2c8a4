#!/usr/bin/env bash
# Two Gatehouse replicas on one PostgreSQL database (the README's "Several replicas"): a private cluster from
# scripts/local-postgres.sh, the echo upstream, replica A on localhost:8080 and replica B on localhost:8081, both
# serving the demo tenant. Keeps everything running until Ctrl-C.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/install-deps.sh
swift build
BIN="$ROOT/.build/debug/gatehouse"
export GATEHOUSE_STORE="$(scripts/local-postgres.sh start)"
mkdir -p data
[ -f data/replicas-master.key ] || (umask 077; openssl rand -base64 32 >data/replicas-master.key)
export GATEHOUSE_MASTER_KEY="$(cat data/replicas-master.key)"
"$BIN" check --config examples/replicas/a.yaml
"$BIN" echo --listen 127.0.0.1:9001 >/dev/null &
PIDS=($!)
"$BIN" serve --config examples/replicas/a.yaml 2>data/replica-a.log &
PIDS+=($!)
"$BIN" serve --config examples/replicas/b.yaml 2>data/replica-b.log &
PIDS+=($!)
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
until curl -sf -o /dev/null http://127.0.0.1:9090/readyz && curl -sf -o /dev/null http://127.0.0.1:9091/readyz; do sleep 0.1; done
echo "replica A: http://localhost:8080 (admin 9090), replica B: http://localhost:8081 (admin 9091); logs in data/replica-*.log"
echo "store: $(sed -E "s#(//[^:]+):[^@]*@#\1:***@#" <<<"$GATEHOUSE_STORE")"
echo "stop the database: scripts/local-postgres.sh stop; start it again: scripts/local-postgres.sh start. Ctrl-C stops the replicas."
wait "${PIDS[1]}"
