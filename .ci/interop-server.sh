#!/usr/bin/env bash
# Interoperability of the ntp-server `serve` example with real clients:
# chronyd one-shot (-Q) and NTPsec's ntpdig must accept its answers (exit 0,
# |offset| under 10 ms), and ntpdig must recognise its Kiss-o'-Death DENY.
#
# Runs as root in CI after the tests (called from .ci/run). Everything
# stays on 127.0.0.1; nothing touches the system clock: chronyd runs with
# -Q (measure only) and -x (never control the clock), with its whole
# configuration on the command line, and the server only reads the clock.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${NTP_INTEROP_PORT:-11123}"
SHARED="${NTP_SHARED:-../shared}"
MAX_OFFSET=0.010

INTEROP_NAME=interop
# shellcheck source=interop-lib.sh
source .ci/interop-lib.sh

install_missing chronyd:chrony ntpdig:ntpsec-ntpdig

step "building the serve example"
cargo build --release --locked -p ntp-server --example serve
SERVE=target/release/examples/serve

work=$(mktemp -d)
serve_pid=""
cleanup() {
    if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
        kill "$serve_pid" 2>/dev/null || true
        wait "$serve_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# start_server LOG ARGS...: serve on 127.0.0.1:PORT (start_serve_on in
# interop-lib.sh).
start_server() {
    local log=$1
    shift
    start_serve_on "127.0.0.1:$PORT" 60 "$log" "$@"
}

# stop_server LOG: Ctrl-C, then the counters line must be printed.
stop_server() {
    kill -INT "$serve_pid"
    wait "$serve_pid"
    serve_pid=""
    grep '^counters:' "$1"
}

step "chronyd -Q against our server"
start_server "$work/serve.log"
if ! timeout 60 chronyd -Q -x -t 20 "pidfile $work/chronyd.pid" \
    "server 127.0.0.1 port $PORT iburst" >"$work/chronyd.log" 2>&1; then
    cat "$work/chronyd.log"
    echo "interop: chronyd -Q did not accept our answers"
    exit 1
fi
cat "$work/chronyd.log"
offset=$(sed -n 's/.*System clock wrong by \([-0-9.e]*\) seconds.*/\1/p' "$work/chronyd.log" | tail -n 1)
if [ -z "$offset" ]; then
    echo "interop: no offset in chronyd's output"
    exit 1
fi
check_offset "chronyd -Q" "$offset"

step "ntpdig against our server"
if ! NTPDIG_PORT=$PORT timeout 30 "$SHARED/interop/ntpdig-port" -j 127.0.0.1 >"$work/ntpdig.json" 2>&1; then
    cat "$work/ntpdig.json"
    echo "interop: ntpdig did not accept our answers"
    exit 1
fi
cat "$work/ntpdig.json"
read -r offset stratum < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["offset"], d["stratum"])' "$work/ntpdig.json")
if [ "$stratum" != 1 ]; then
    echo "interop: ntpdig saw stratum $stratum, expected 1"
    exit 1
fi
check_offset "ntpdig" "$offset"
stop_server "$work/serve.log"

step "ntpdig against a server that denies 127.0.0.0/8 (KoD DENY)"
start_server "$work/deny.log" --rule 127.0.0.0/8=deny
if NTPDIG_PORT=$PORT timeout 30 "$SHARED/interop/ntpdig-port" -j 127.0.0.1 >"$work/kod.log" 2>&1; then
    cat "$work/kod.log"
    echo "interop: ntpdig accepted a KoD DENY"
    exit 1
fi
cat "$work/kod.log"
if ! grep -qi 'kod' "$work/kod.log"; then
    echo "interop: ntpdig did not report a KoD"
    exit 1
fi
stop_server "$work/deny.log" >"$work/deny-counters"
cat "$work/deny-counters"
if ! grep -q 'deny=[1-9]' "$work/deny-counters"; then
    echo "interop: the server counted no KoD DENY"
    exit 1
fi

step "interop passed"
