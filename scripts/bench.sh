#!/usr/bin/env bash
# Benchmarks Gatehouse against the peers in ../shared/bench (not a test).
#
#   scripts/bench.sh              # release build, then Gatehouse on a public route vs nginx-plain, A B A B
#   ROUNDS=4 scripts/bench.sh     # more rounds for a steadier median
#   scripts/bench.sh startup      # start-up time with 10,000 tenant files
#
# Needs ../shared/bench/setup.sh run once (as root). Everything listens on 127.0.0.1 only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="${BENCH_DIR:-$ROOT/../shared/bench}"
MODE="${1:-proxy}"
WORK="$(mktemp -d /tmp/gatehouse-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

[ -x "$BENCH/run.sh" ] || { echo "no benchmark harness at $BENCH" >&2; exit 1; }
echo "building release..." >&2
swift build -c release --package-path "$ROOT" >&2
BIN="$ROOT/.build/release/gatehouse"

mkdir -p "$WORK/config" "$WORK/tenants"
cat >"$WORK/config/gatehouse.yaml" <<YAML
listen: 127.0.0.1:18050
admin_listen: 127.0.0.1:18059
tenants: ../tenants
access_log: ${ACCESS_LOG:-true}
YAML

case "$MODE" in
startup)
    for i in $(seq 0 9999); do
        printf 'hosts: [t%s.test, "*.t%s.test"]\nroutes:\n  - {path: /, upstream: "http://127.0.0.1:18000", require: public}\n  - {path: /api, upstream: "http://127.0.0.1:18000", strip_prefix: true}\n' "$i" "$i" >"$WORK/tenants/t$i.yaml"
    done
    for run in 1 2 3; do
        start=$(date +%s.%N)
        "$BIN" serve --config "$WORK/config/gatehouse.yaml" >/dev/null 2>"$WORK/serve.log" &
        pid=$!
        until curl -sf -o /dev/null http://127.0.0.1:18059/readyz; do sleep 0.02; done
        end=$(date +%s.%N)
        code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: t9999.test' http://127.0.0.1:18050/api/x)
        kill -TERM "$pid"; wait "$pid" || true
        printf 'start-up with 10000 tenants: %.2f s (run %d; a request to the last tenant: %s)\n' "$(echo "$end - $start" | bc)" "$run" "$code"
    done
    ;;
proxy)
    cat >"$WORK/tenants/bench.yaml" <<YAML
hosts: [127.0.0.1]
routes:
  - {path: /api, upstream: "http://127.0.0.1:18000", require: public}
YAML
    "$BIN" check --config "$WORK/config/gatehouse.yaml" >&2
    GATEWAY_NAME=gatehouse-public \
    GATEWAY_URL=http://127.0.0.1:18050/api \
    GATEWAY_AUTH=none \
    GATEWAY_CMD="$BIN serve --config $WORK/config/gatehouse.yaml" \
    TARGETS="${TARGETS:-nginx-plain}" \
    ROUNDS="${ROUNDS:-2}" \
        "$BENCH/run.sh" proxy
    ;;
*)
    echo "usage: scripts/bench.sh [proxy|startup]" >&2
    exit 2
    ;;
esac
