#!/usr/bin/env bash
# Installs what building and testing Gatehouse needs on a fresh Debian machine with Swift, when missing.
# Safe to re-run; does nothing when everything is there.
set -euo pipefail
packages=()
command -v curl >/dev/null 2>&1 || packages+=(curl)          # TLS/HTTP/2 tests and the walk-through
command -v openssl >/dev/null 2>&1 || packages+=(openssl)    # test certificates
[ -f /usr/include/sqlite3.h ] || packages+=(libsqlite3-dev)   # the embedded store (GRDB links the system SQLite)
[ -f /usr/include/sodium.h ] || packages+=(libsodium-dev)     # argon2id password hashing (libsodium's SIMD code)
[ -f /usr/include/argon2.h ] || packages+=(libargon2-dev)     # argon2id with more than one lane
[ -f /usr/include/crypt.h ] || packages+=(libcrypt-dev)       # verifying imported bcrypt hashes (libxcrypt)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || packages+=(postgresql)   # the tests' private PostgreSQL cluster
command -v chromium >/dev/null 2>&1 || packages+=(chromium)    # the browser test of the login pages (headless)
command -v chromedriver >/dev/null 2>&1 || packages+=(chromium-driver)   # ...driven over WebDriver
# An independent parser of the /metrics exposition format, for the metrics tests (Debian's python3, not the PATH's).
/usr/bin/python3 -c 'import prometheus_client.parser' >/dev/null 2>&1 || packages+=(python3-prometheus-client)
# A real SMTP server for the mail tests (aiosmtpd, run with Debian's python3).
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || packages+=(python3-aiosmtpd)
# An HTTP/2 implementation that is not the gateway's (hyper-h2), for the hostile-client tests (scripts/h2-probe.py).
/usr/bin/python3 -c 'import h2' >/dev/null 2>&1 || packages+=(python3-h2)
# An HTTP/1.1 parser that is neither swift-nio's nor llhttp (h11, as Python servers read requests), for the tests of
# the bytes the gateway sends upstream (scripts/h11-read.py).
/usr/bin/python3 -c 'import h11' >/dev/null 2>&1 || packages+=(python3-h11)
if ((${#packages[@]})); then
    if [ "$(id -u)" != 0 ]; then
        echo "missing: ${packages[*]} (run as root, or: sudo apt-get install ${packages[*]})" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi
command -v swift >/dev/null 2>&1 || { echo "swift is not on PATH (Swift 6 toolchain required)" >&2; exit 1; }
