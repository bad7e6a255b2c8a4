#!/usr/bin/env bash
# Runs Gatehouse on the bundled example (config/gatehouse.yaml, tenants/demo.yaml) in front of the echo upstream,
# shows one proxied request, then keeps both running until Ctrl-C.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/install-deps.sh
swift build
BIN="$ROOT/.build/debug/gatehouse"
"$BIN" check
"$BIN" echo --listen 127.0.0.1:9001 &
ECHO_PID=$!
"$BIN" serve &
SERVE_PID=$!
trap 'kill $SERVE_PID $ECHO_PID 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
until curl -sf -o /dev/null http://127.0.0.1:9090/readyz; do sleep 0.1; done
echo
echo "\$ curl -s -H 'X-User-Id: forged' 'http://localhost:8080/hello?name=world'"
curl -s -H 'X-User-Id: forged' 'http://localhost:8080/hello?name=world'
echo
echo "Gatehouse is listening on http://localhost:8080 (admin: http://127.0.0.1:9090/readyz). Ctrl-C stops it."
wait $SERVE_PID
