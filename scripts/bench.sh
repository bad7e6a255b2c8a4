#!/usr/bin/env bash
# Benchmarks Gatehouse against the peers in ../shared/bench (not a test).
#
#   scripts/bench.sh              # release build, then Gatehouse on a public route vs nginx-plain, A B A B
#   ROUNDS=4 scripts/bench.sh     # more rounds for a steadier median
#   scripts/bench.sh startup      # start-up time with 10,000 tenant files
#   scripts/bench.sh auth         # an authenticated ES256 route (token from Gatehouse's own login) vs nginx-plain and
#                                 # haproxy-es256, then the login scenario (POST /auth/token) vs the FastAPI peers
#   scripts/bench.sh flood        # p99 of an authenticated route alone, then while 50 logins are in flight
#   A=old/gatehouse B=new/gatehouse scripts/bench.sh ab
#                                 # two builds against nginx-plain at equal resources (GATEHOUSE_THREADS=1, nginx's
#                                 # one worker): rounds of nginx-plain, A, B on the public route, on an ES256 route and
#                                 # on that route with a browser session cookie instead of the token, with req/s, the
#                                 # ratio to nginx-plain and CPU microseconds per request
#   scripts/bench.sh metrics      # the same rounds as ab, one build with GATEHOUSE_METRICS=off then =on: what
#                                 # recording the §10 metrics costs on the public and the ES256 route
#   scripts/bench.sh tls          # TLS 1.3 HTTP/1.1 (wrk over https) to a public route: Gatehouse (GATEHOUSE_THREADS=1)
#                                 # vs nginx with TLS and one worker, both with a self-signed ECDSA P-256 certificate
#   scripts/bench.sh h2           # the same over HTTP/2 with Debian's h2load: -c16 -m16 (many streams), then -c64 -m1
#                                 # (one stream per connection)
#   A=old/gatehouse B=new/gatehouse scripts/bench.sh logins
#                                 # logins (POST /auth/token, argon2id at the default m=19MiB t=2 p=1, one hashing thread
#                                 # per core): logins/s with 16 clients, and the latency of one login alone, A B A B
#   GATEHOUSE_BIN=old/gatehouse scripts/bench.sh h2
#                                 # any mode but ab and logins with that build instead of a fresh release build
#   Every mode that prints a table prints the server's CPU microseconds per request next to req/s.
#   scripts/bench.sh replicas     # two replicas (GATEHOUSE_THREADS=1 each) on one store, SQLite and PostgreSQL, A B B A:
#                                 # an authenticated ES256 route with the load split between them (one wrk each),
#                                 # logins (POST /auth/token) split the same way, and revocation propagation: 200 logouts
#                                 # on replica A, each timed until replica B refuses the token (median, p99)
#
# The access log is off by default, as nginx-plain's is (`access_log off`); ACCESS_LOG=true measures it on.
# Needs ../shared/bench/setup.sh run once (as root). Everything listens on 127.0.0.1 only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="${BENCH_DIR:-$ROOT/../shared/bench}"
MODE="${1:-proxy}"
WORK="$(mktemp -d /tmp/gatehouse-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

[ -x "$BENCH/run.sh" ] || { echo "no benchmark harness at $BENCH" >&2; exit 1; }
if [ "$MODE" = ab ] || [ "$MODE" = logins ]; then
    BIN="${A:?A=path/to/gatehouse (and B=...) for scripts/bench.sh $MODE}"
elif [ -n "${GATEHOUSE_BIN:-}" ]; then
    BIN="$GATEHOUSE_BIN"  # a build made before (another commit's, say): measured as it is
else
    echo "building release..." >&2
    swift build -c release --package-path "$ROOT" >&2
    BIN="$ROOT/.build/release/gatehouse"
fi
if [ "$MODE" = metrics ]; then A="$BIN" B="$BIN"; fi

mkdir -p "$WORK/config" "$WORK/tenants"
cat >"$WORK/config/gatehouse.yaml" <<YAML
listen: 127.0.0.1:18050
admin_listen: 127.0.0.1:18059
tenants: ../tenants
access_log: ${ACCESS_LOG:-false}
YAML

# The CPU ticks (user + system) a process used so far: all its threads.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# measure NAME PID URL [wrk args...]: 2 s warm-up, 10 s (DURATION) measured with wrk -t1 -c64; prints req/s, the
# server's CPU µs per request, the non-2xx count and the p99 latency.
measure() {
    local name=$1 pid=$2 url=$3; shift 3
    wrk -t1 -c64 -d2s "$@" "$url" >/dev/null
    local before after out rps requests non2xx p99
    before=$(ticks "$pid")
    out=$(wrk -t1 -c64 -d"${DURATION:-10s}" --latency "$@" "$url")
    after=$(ticks "$pid")
    rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    requests=$(awk '/requests in/{print $1}' <<<"$out")
    non2xx=$(awk '/Non-2xx/{print $5}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    printf '%s\t%s\t%.1f\t%s\t%s\n' "$name" "$rps" "$(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / $requests" | bc -l)" "${non2xx:-0}" "$p99"
}
# measure_h2 NAME PID URL [h2load args...]: the same with h2load over HTTP/2 (2 s warm-up inside the run).
measure_h2() {
    local name=$1 pid=$2 url=$3; shift 3
    local before after out rps requests failed
    before=$(ticks "$pid")
    out=$(h2load --warm-up-time=2 -D "${DURATION:-10}" "$@" "$url")
    after=$(ticks "$pid")
    rps=$(awk '/^finished in/{print $4}' <<<"$out")
    requests=$(awk '/^requests:/{print $8}' <<<"$out")
    failed=$(awk '/^requests:/{print $10 + 0}' <<<"$out")
    # h2load gives no percentiles: the mean and the maximum time for a request.
    local latency
    latency=$(awk '/^time for request:/{print "mean " $6 " max " $5}' <<<"$out" | head -1)
    printf '%s\t%s\t%.1f\t%s\t%s\n' "$name" "$rps" "$(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / ($requests + 0.0001)" | bc -l)" "${failed:-0}" "$latency"
}

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
auth)
    cat >"$WORK/tenants/bench.yaml" <<YAML
hosts: [127.0.0.1]
signup: {enabled: true}
tokens: {algorithm: ES256, access_ttl: 1h}
lockout: {max_failures: 1000, window: 1m}
identity_headers: {X-User-Id: sub, X-User-Email: email, X-User-Roles: roles, X-User-Tenant: tenant}
routes:
  - {path: /api, upstream: "http://127.0.0.1:18000", require: authenticated}
YAML
    "$BIN" check --config "$WORK/config/gatehouse.yaml" >&2
    # Sign a user up and log in once to get a token from Gatehouse itself; the user, the keys and the master key
    # stay in $WORK/data, so the gateway the harness starts (GATEWAY_CMD, measured as a server) accepts it.
    "$BIN" serve --config "$WORK/config/gatehouse.yaml" >/dev/null 2>"$WORK/serve.log" &
    GATEWAY_PID=$!
    until curl -sf -o /dev/null http://127.0.0.1:18059/readyz; do sleep 0.1; done
    curl -sf -o /dev/null -X POST http://127.0.0.1:18050/auth/signup -H 'Content-Type: application/json' \
        -d '{"email":"tokenuser@example.com","password":"bench-password-1"}'
    curl -sf -X POST http://127.0.0.1:18050/auth/login -H 'Content-Type: application/json' \
        -d '{"email":"tokenuser@example.com","password":"bench-password-1"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' >"$WORK/gatehouse.jwt"
    kill -TERM "$GATEWAY_PID"; wait "$GATEWAY_PID" || true
    export GATEWAY_CMD="$BIN serve --config $WORK/config/gatehouse.yaml"
    GATEWAY_NAME=gatehouse-es256 \
    GATEWAY_URL=http://127.0.0.1:18050/api \
    GATEWAY_TOKEN_FILE="$WORK/gatehouse.jwt" \
    GATEWAY_ALG=es256 \
    TARGETS="${TARGETS:-nginx-plain haproxy-es256}" \
    ROUNDS="${ROUNDS:-2}" \
        "$BENCH/run.sh" proxy
    GATEWAY_NAME=gatehouse \
    GATEWAY_URL=http://127.0.0.1:18050/api \
    GATEWAY_TOKEN_FILE="$WORK/gatehouse.jwt" \
    GATEWAY_SIGNUP_URL=http://127.0.0.1:18050/auth/signup \
    GATEWAY_SIGNUP_BODY='{"email":"benchuser@example.com","password":"bench-password-1"}' \
    GATEWAY_LOGIN_URL=http://127.0.0.1:18050/auth/token \
    GATEWAY_LOGIN_BODY='grant_type=password&username=benchuser%40example.com&password=bench-password-1' \
    GATEWAY_BCRYPT_COST='argon2id m=19MiB t=2 p=1' \
    ROUNDS="${ROUNDS:-2}" \
        "$BENCH/run.sh" login
    ;;
flood)
    command -v wrk >/dev/null || { echo "wrk is missing (run ../shared/bench/setup.sh)" >&2; exit 1; }
    cat >"$WORK/tenants/bench.yaml" <<YAML
hosts: [127.0.0.1]
signup: {enabled: true}
tokens: {access_ttl: 1h}
lockout: {max_failures: 1000, window: 1m}
routes:
  - {path: /api, upstream: "http://127.0.0.1:18077", require: authenticated}
YAML
    "$BIN" echo --listen 127.0.0.1:18077 >/dev/null &
    ECHO_PID=$!
    "$BIN" serve --config "$WORK/config/gatehouse.yaml" >/dev/null 2>"$WORK/serve.log" &
    GATEWAY_PID=$!
    trap 'kill $GATEWAY_PID $ECHO_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
    until curl -sf -o /dev/null http://127.0.0.1:18059/readyz; do sleep 0.1; done
    curl -sf -o /dev/null -X POST http://127.0.0.1:18050/auth/signup -H 'Content-Type: application/json' \
        -d '{"email":"flood@example.com","password":"bench-password-1"}'
    TOKEN=$(curl -sf -X POST http://127.0.0.1:18050/auth/login -H 'Content-Type: application/json' \
        -d '{"email":"flood@example.com","password":"bench-password-1"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    cat >"$WORK/login.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=password&username=flood%40example.com&password=bench-password-1"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
    proxied() { wrk -t1 -c16 -d8s --latency -H "Authorization: Bearer $TOKEN" http://127.0.0.1:18050/api/x | awk '$1=="99%"{print $2} /Requests\/sec/{print $2}' | paste -sd' '; }
    for round in $(seq 1 "${ROUNDS:-2}"); do
        echo "round $round, proxied alone (p99, req/s): $(proxied)"
        wrk -t1 -c50 -d11s -s "$WORK/login.lua" http://127.0.0.1:18050/auth/token >"$WORK/logins.txt" &
        LOGINS=$!
        sleep 1.5
        echo "round $round, proxied with 50 logins in flight (p99, req/s): $(proxied)"
        wait $LOGINS
        echo "round $round, logins/s meanwhile: $(awk '/Requests\/sec/{print $2}' "$WORK/logins.txt"), non-2xx: $(awk '/Non-2xx/{print $5}' "$WORK/logins.txt")"
    done
    ;;
ab | metrics)
    : "${B:?B=path/to/gatehouse}"
    command -v wrk >/dev/null || { echo "wrk is missing (run ../shared/bench/setup.sh)" >&2; exit 1; }
    mkdir -p "$WORK/run/logs" "$WORK/run/tmp" "$WORK/run/conf"
    for conf in nginx-upstream nginx-proxy; do
        sed -e "s|@RUN@|$WORK/run|g" -e "s|@UPSTREAM_PORT@|18000|g" -e "s|@NGINX_PLAIN_PORT@|18001|g" \
            "$BENCH/conf/$conf.conf" >"$WORK/run/conf/$conf.conf"
    done
    nginx -e "$WORK/run/logs/up.err" -c "$WORK/run/conf/nginx-upstream.conf" -g 'daemon off;' &
    UPSTREAM_PID=$!
    trap 'kill $UPSTREAM_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
    cat >"$WORK/tenants/bench.yaml" <<YAML
hosts: [127.0.0.1]
signup: {enabled: true}
tokens: {algorithm: ES256, access_ttl: 1h}
identity_headers: {X-User-Id: sub, X-User-Email: email, X-User-Roles: roles, X-User-Tenant: tenant}
routes:
  - {path: /api, upstream: "http://127.0.0.1:18000", require: public}
  - {path: /auth-api, upstream: "http://127.0.0.1:18000", require: authenticated, strip_prefix: true}
YAML
    until curl -sf -o /dev/null http://127.0.0.1:18000/; do sleep 0.1; done
    # One token from B's own login, valid for both builds (same data folder, keys and master key). B signs it: a
    # newer build may refuse what an older one signed (Gatehouse now accepts only low-S ES256 signatures).
    GATEHOUSE_THREADS=1 "$B" serve --config "$WORK/config/gatehouse.yaml" >/dev/null 2>"$WORK/serve.log" &
    pid=$!
    until curl -sf -o /dev/null http://127.0.0.1:18059/readyz; do sleep 0.1; done
    curl -sf -o /dev/null -X POST http://127.0.0.1:18050/auth/signup -H 'Content-Type: application/json' \
        -d '{"email":"ab@example.com","password":"bench-password-1"}'
    TOKEN=$(curl -sf -X POST http://127.0.0.1:18050/auth/login -H 'Content-Type: application/json' \
        -d '{"email":"ab@example.com","password":"bench-password-1"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    # And a browser session for the same user, through the login form (its CSRF token and cookie first).
    JAR="$WORK/cookies"
    CSRF=$(curl -sf -c "$JAR" -b "$JAR" http://127.0.0.1:18050/auth/login | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p')
    curl -sf -o /dev/null -c "$JAR" -b "$JAR" -H 'Origin: http://127.0.0.1:18050' http://127.0.0.1:18050/auth/login \
        --data-urlencode 'email=ab@example.com' --data-urlencode 'password=bench-password-1' --data-urlencode "csrf_token=$CSRF"
    SESSION=$(awk '$6 == "gatehouse_session" {print $7}' "$JAR")
    [ -n "$SESSION" ] || { echo "no session cookie from the login form" >&2; exit 1; }
    kill -TERM "$pid"; wait "$pid" || true
    run_gateway() {  # run_gateway NAME BIN [VAR=value]: one round of both routes on this build
        env ${3:-GATEHOUSE_METRICS=on} GATEHOUSE_THREADS=1 "$2" serve --config "$WORK/config/gatehouse.yaml" >/dev/null 2>>"$WORK/serve.log" &
        local gpid=$!
        until curl -sf -o /dev/null http://127.0.0.1:18059/readyz; do sleep 0.05; done
        measure "$1 public" "$gpid" http://127.0.0.1:18050/api/ok
        measure "$1 es256" "$gpid" http://127.0.0.1:18050/auth-api/ok -H "Authorization: Bearer $TOKEN"
        [ "$MODE" = metrics ] || measure "$1 session" "$gpid" http://127.0.0.1:18050/auth-api/ok -H "Cookie: gatehouse_session=$SESSION"
        kill -TERM "$gpid"; wait "$gpid" || true
    }
    printf 'target\treq/s\tCPU µs/req\tnon-2xx\tp99\n'
    for round in $(seq 1 "${ROUNDS:-2}"); do
        nginx -e "$WORK/run/logs/px.err" -c "$WORK/run/conf/nginx-proxy.conf" -g 'daemon off;' &
        npid=$!
        until curl -sf -o /dev/null http://127.0.0.1:18001/api/ok; do sleep 0.05; done
        # nginx's master forks one worker: that worker does the work.
        wpid=$(pgrep -P "$npid" | head -1)
        measure "nginx-plain" "$wpid" http://127.0.0.1:18001/api/ok
        kill -QUIT "$npid"; wait "$npid" || true
        if [ "$MODE" = metrics ]; then
            run_gateway metrics-off "$A" GATEHOUSE_METRICS=off
            run_gateway metrics-on "$B" GATEHOUSE_METRICS=on
        else
            run_gateway A "$A"
            run_gateway B "$B"
        fi
    done
    ;;
tls | h2)
    command -v wrk >/dev/null || { echo "wrk is missing (run ../shared/bench/setup.sh)" >&2; exit 1; }
    [ "$MODE" = tls ] || command -v h2load >/dev/null || { echo "h2load is missing (apt-get install nghttp2-client)" >&2; exit 1; }
    mkdir -p "$WORK/run/logs" "$WORK/run/tmp" "$WORK/run/conf" "$WORK/tls"
    # One self-signed ECDSA P-256 certificate for both servers.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null
    sed -e "s|@RUN@|$WORK/run|g" -e "s|@UPSTREAM_PORT@|18000|g" "$BENCH/conf/nginx-upstream.conf" >"$WORK/run/conf/nginx-upstream.conf"
    cat >"$WORK/run/conf/nginx-tls.conf" <<NGINX
worker_processes 1;
pid $WORK/run/nginx-tls.pid;
error_log $WORK/run/logs/nginx-tls.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    http2_max_concurrent_streams 128;
    client_body_temp_path $WORK/run/tmp/tls-body;
    proxy_temp_path $WORK/run/tmp/tls-proxy;
    fastcgi_temp_path $WORK/run/tmp/tls-fcgi;
    uwsgi_temp_path $WORK/run/tmp/tls-uwsgi;
    scgi_temp_path $WORK/run/tmp/tls-scgi;
    upstream app {
        server 127.0.0.1:18000;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:18002 ssl http2 reuseport backlog=4096;
        ssl_certificate $WORK/tls/cert.pem;
        ssl_certificate_key $WORK/tls/key.pem;
        ssl_protocols TLSv1.3;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }
    }
}
NGINX
    nginx -e "$WORK/run/logs/up.err" -c "$WORK/run/conf/nginx-upstream.conf" -g 'daemon off;' &
    UPSTREAM_PID=$!
    trap 'kill $UPSTREAM_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
    cat >>"$WORK/config/gatehouse.yaml" <<YAML
tls:
  certificate: $WORK/tls/cert.pem
  private_key: $WORK/tls/key.pem
YAML
    cat >"$WORK/tenants/bench.yaml" <<YAML
hosts: [127.0.0.1]
routes:
  - {path: /api, upstream: "http://127.0.0.1:18000", require: public}
YAML
    "$BIN" check --config "$WORK/config/gatehouse.yaml" >&2
    until curl -sf -o /dev/null http://127.0.0.1:18000/; do sleep 0.1; done
    run_one() {  # run_one NAME PID URL: the mode's load against one server
        if [ "$MODE" = tls ]; then
            measure "$1 https/1.1" "$2" "$3"
        else
            measure_h2 "$1 h2 c16 m16" "$2" "$3" -c16 -m16
            measure_h2 "$1 h2 c64 m1" "$2" "$3" -c64 -m1
        fi
    }
    printf 'target\treq/s\tCPU µs/req\tfailed\tlatency (wrk: p99; h2load: mean and max)\n'
    for round in $(seq 1 "${ROUNDS:-2}"); do
        nginx -e "$WORK/run/logs/tls.err" -c "$WORK/run/conf/nginx-tls.conf" -g 'daemon off;' &
        npid=$!
        until curl -skf -o /dev/null https://127.0.0.1:18002/api/ok; do sleep 0.05; done
        run_one nginx-tls "$(pgrep -P "$npid" | head -1)" https://127.0.0.1:18002/api/ok
        kill -QUIT "$npid"; wait "$npid" || true
        GATEHOUSE_THREADS=1 "$BIN" serve --config "$WORK/config/gatehouse.yaml" >/dev/null 2>>"$WORK/serve.log" &
        gpid=$!
        until curl -skf -o /dev/null https://127.0.0.1:18050/api/ok; do sleep 0.05; done
        run_one gatehouse "$gpid" https://127.0.0.1:18050/api/ok
        kill -TERM "$gpid"; wait "$gpid" || true
    done
    ;;
logins)
    : "${B:?B=path/to/gatehouse}"
    command -v wrk >/dev/null || { echo "wrk is missing (run ../shared/bench/setup.sh)" >&2; exit 1; }
    cat >"$WORK/tenants/bench.yaml" <<YAML
hosts: [127.0.0.1]
signup: {enabled: true}
lockout: {max_failures: 1000, window: 1m}
routes:
  - {path: /api, upstream: "http://127.0.0.1:18000", require: public}
YAML
    cat >"$WORK/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=password&username=login%40example.com&password=bench-password-1"
LUA
    printf 'target\tclients\tlogins/s\tCPU µs/login\tnon-2xx\tp99\n'
    one() {  # one NAME BIN: a round on one build
        "$2" serve --config "$WORK/config/gatehouse.yaml" >/dev/null 2>>"$WORK/serve.log" &
        local gpid=$!
        until curl -sf -o /dev/null http://127.0.0.1:18059/readyz; do
            kill -0 "$gpid" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
            sleep 0.05
        done
        curl -s -o /dev/null -X POST http://127.0.0.1:18050/auth/signup -H 'Content-Type: application/json' \
            -d '{"email":"login@example.com","password":"bench-password-1"}'
        for clients in 1 16; do
            wrk -t1 -c"$clients" -d2s -s "$WORK/login.lua" http://127.0.0.1:18050/auth/token >/dev/null
            local before after out
            before=$(ticks "$gpid")
            out=$(wrk -t1 -c"$clients" -d"${DURATION:-10s}" --latency -s "$WORK/login.lua" http://127.0.0.1:18050/auth/token)
            after=$(ticks "$gpid")
            printf '%s\t%s\t%s\t%.0f\t%s\t%s\n' "$1" "$clients" "$(awk '/Requests\/sec/{print $2}' <<<"$out")" \
                "$(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / $(awk '/requests in/{print $1}' <<<"$out")" | bc -l)" \
                "$(awk '/Non-2xx/{print $5}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")"
        done
        kill -TERM "$gpid"; wait "$gpid" || true
    }
    for round in $(seq 1 "${ROUNDS:-2}"); do
        one A "$A"
        one B "$B"
    done
    echo "(one login alone takes about one hash; $(nproc) cores ideally make $(nproc) / that many logins/s)"
    ;;
replicas)
    command -v wrk >/dev/null || { echo "wrk is missing (run ../shared/bench/setup.sh)" >&2; exit 1; }
    mkdir -p "$WORK/run/logs" "$WORK/run/tmp" "$WORK/run/conf"
    sed -e "s|@RUN@|$WORK/run|g" -e "s|@UPSTREAM_PORT@|18000|g" -e "s|@NGINX_PLAIN_PORT@|18001|g" \
        "$BENCH/conf/nginx-upstream.conf" >"$WORK/run/conf/nginx-upstream.conf"
    nginx -e "$WORK/run/logs/up.err" -c "$WORK/run/conf/nginx-upstream.conf" -g 'daemon off;' &
    UPSTREAM_PID=$!
    trap 'kill $UPSTREAM_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
    chmod 755 "$WORK"  # the cluster belongs to the postgres user when run as root
    PG_URL=$("$ROOT/scripts/local-postgres.sh" start "$WORK/pg" 18432)
    trap 'kill $UPSTREAM_PID 2>/dev/null; "$ROOT/scripts/local-postgres.sh" stop "$WORK/pg" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
    cat >"$WORK/tenants/bench.yaml" <<YAML
hosts: [127.0.0.1]
issuer: http://bench.replicas
signup: {enabled: true}
tokens: {algorithm: ES256, access_ttl: 1h}
lockout: {max_failures: 1000, window: 1m}
identity_headers: {X-User-Id: sub, X-User-Email: email, X-User-Roles: roles, X-User-Tenant: tenant}
routes:
  - {path: /api, upstream: "http://127.0.0.1:18000", require: authenticated}
YAML
    MASTER=$(openssl rand -base64 32)
    # replica_config STORE NAME PORT ADMIN
    replica_config() {
        printf 'listen: 127.0.0.1:%s\nadmin_listen: 127.0.0.1:%s\ntenants: ../tenants\naccess_log: false\nstore: %s\nmaster_key: %s\n' \
            "$3" "$4" "$1" "$MASTER" >"$WORK/config/$2.yaml"
    }
    cat >"$WORK/login.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=password&username=bench%40example.com&password=bench-password-1"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
    cat >"$WORK/revocations.py" <<'PY'
# 200 logins and logouts on replica A; each logout is timed until replica B refuses the token (a persistent
# connection to B, polled without pause). Prints the median and p99 in milliseconds.
import http.client, json, statistics, sys, time
a, b = int(sys.argv[1]), int(sys.argv[2])
ca, cb = http.client.HTTPConnection("127.0.0.1", a), http.client.HTTPConnection("127.0.0.1", b)
def call(c, method, path, body=None, headers={}):
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse(); data = r.read(); return r.status, data
lags = []
for _ in range(200):
    _, data = call(ca, "POST", "/auth/login", json.dumps({"email": "bench@example.com", "password": "bench-password-1"}), {"Content-Type": "application/json"})
    token = json.loads(data)["access_token"]
    auth = {"Authorization": "Bearer " + token}
    assert call(cb, "GET", "/api/ok", headers=auth)[0] == 200
    start = time.perf_counter()
    assert call(ca, "POST", "/auth/logout", headers=auth)[0] == 204
    while call(cb, "GET", "/api/ok", headers=auth)[0] != 401:
        if time.perf_counter() - start > 5: break
    lags.append((time.perf_counter() - start) * 1000)
lags.sort()
print("%.1f\t%.1f\t%.1f" % (statistics.median(lags), lags[int(len(lags) * 0.99) - 1], lags[-1]))
PY
    # split NAME URL CONNECTIONS [wrk args]: 2 s warm-up, then 10 s with one wrk per replica at once; prints the sum
    # of req/s and the replicas' CPU µs per request.
    split() {
        local name=$1 path=$2 conns=$3; shift 3
        wrk -t1 -c"$conns" -d2s "$@" "http://127.0.0.1:18050$path" >/dev/null & wrk -t1 -c"$conns" -d2s "$@" "http://127.0.0.1:18051$path" >/dev/null; wait %%
        local before after
        before=$(( $(ticks "$RA") + $(ticks "$RB") ))
        wrk -t1 -c"$conns" -d10s "$@" "http://127.0.0.1:18050$path" >"$WORK/a.txt" &
        wrk -t1 -c"$conns" -d10s "$@" "http://127.0.0.1:18051$path" >"$WORK/b.txt"
        wait %%
        after=$(( $(ticks "$RA") + $(ticks "$RB") ))
        local rps requests non2xx
        rps=$(cat "$WORK/a.txt" "$WORK/b.txt" | awk '/Requests\/sec/{s+=$2} END{printf "%.0f", s}')
        requests=$(cat "$WORK/a.txt" "$WORK/b.txt" | awk '/requests in/{s+=$1} END{print s}')
        non2xx=$(cat "$WORK/a.txt" "$WORK/b.txt" | awk '/Non-2xx/{s+=$5} END{print s+0}')
        printf '%s\t%s\t%.1f\t%s\n' "$name" "$rps" "$(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / $requests" | bc -l)" "$non2xx"
    }
    until curl -sf -o /dev/null http://127.0.0.1:18000/; do sleep 0.1; done
    printf 'target\treq/s (both replicas)\tCPU µs/req\tnon-2xx\n'
    REVOCATIONS=""
    for round in $(seq 1 "${ROUNDS:-2}"); do
        # A B B A: which store goes first alternates, so a drift within a round favours neither.
        order="sqlite postgres"
        [ $((round % 2)) = 0 ] && order="postgres sqlite"
        for store in $order; do
            if [ "$store" = sqlite ]; then url="sqlite:$WORK/data/gatehouse.sqlite"; else url="$PG_URL"; fi
            replica_config "$url" a 18050 18059
            replica_config "$url" b 18051 18058
            GATEHOUSE_THREADS=1 "$BIN" serve --config "$WORK/config/a.yaml" >/dev/null 2>>"$WORK/serve.log" &
            RA=$!
            until curl -sf -o /dev/null http://127.0.0.1:18059/readyz; do kill -0 "$RA" || { cat "$WORK/serve.log" >&2; exit 1; }; sleep 0.05; done
            GATEHOUSE_THREADS=1 "$BIN" serve --config "$WORK/config/b.yaml" >/dev/null 2>>"$WORK/serve.log" &
            RB=$!
            until curl -sf -o /dev/null http://127.0.0.1:18058/readyz; do kill -0 "$RB" || { cat "$WORK/serve.log" >&2; exit 1; }; sleep 0.05; done
            curl -s -o /dev/null -X POST http://127.0.0.1:18050/auth/signup -H 'Content-Type: application/json' \
                -d '{"email":"bench@example.com","password":"bench-password-1"}'
            TOKEN=$(curl -sf -X POST http://127.0.0.1:18050/auth/login -H 'Content-Type: application/json' \
                -d '{"email":"bench@example.com","password":"bench-password-1"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
            split "$store es256 proxy" /api/ok 32 -H "Authorization: Bearer $TOKEN"
            split "$store login" /auth/token 8 -s "$WORK/login.lua"
            REVOCATIONS+="$store round $round"$'\t'"$(python3 "$WORK/revocations.py" 18050 18051)"$'\n'
            kill -TERM "$RA" "$RB"; wait "$RA" "$RB" || true
        done
    done
    printf '\nrevocation on A seen by B (ms)\tmedian\tp99\tmax\n%s' "$REVOCATIONS"
    ;;
*)
    echo "usage: scripts/bench.sh [proxy|startup|auth|flood|ab|replicas]" >&2
    exit 2
    ;;
esac
