#!/usr/bin/env bash
# Interoperability of the ntp-client examples with a real server: chronyd
# serving on 127.0.0.1 (local stratum 3). Our `sntp` example must read its
# answer with |offset| under 10 ms and stratum 3, and a short `demo` run of
# the full client system against it (--server) must select it as system
# peer with |offset| under 10 ms. Last, ntp-daemon with --xleave against
# it: chronyd's answers after the first must come in the interleaved mode,
# and every T1 must be the kernel's transmit timestamp.
#
# Runs as root in CI after the tests (called from .ci/run). Everything
# stays on 127.0.0.1; nothing touches the system clock: chronyd runs with
# -x (never control the clock) and its own -f configuration (never the
# packaged one, which points at a public pool), and our client only
# measures (the demo steers a model clock, not the system clock).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${NTP_INTEROP_CLIENT_PORT:-11124}"
MAX_OFFSET=0.010
EXPECTED_STRATUM=3

INTEROP_NAME=interop-client
# shellcheck source=interop-lib.sh
source .ci/interop-lib.sh

install_missing chronyd:chrony

step "building the sntp example, the demo and the daemon"
cargo build --release --locked -p ntp-client --example sntp
cargo build --release --locked -p ntp-demo
cargo build --release --locked -p ntp-daemon --bin ntp-daemon
SNTP=target/release/examples/sntp
DEMO=target/release/ntp-demo
DAEMON=target/release/ntp-daemon

work=$(mktemp -d)
chronyd_pid=""
cleanup() {
    if [ -n "$chronyd_pid" ] && kill -0 "$chronyd_pid" 2>/dev/null; then
        kill "$chronyd_pid" 2>/dev/null || true
        wait "$chronyd_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

step "starting chronyd as a stratum $EXPECTED_STRATUM server on 127.0.0.1:$PORT"
cat >"$work/chrony.conf" <<EOF
port $PORT
bindaddress 127.0.0.1
cmdport 0
local stratum $EXPECTED_STRATUM
allow 127.0.0.1
pidfile $work/chronyd.pid
driftfile $work/drift
EOF
chronyd -x -u root -d -f "$work/chrony.conf" >"$work/chronyd.log" 2>&1 &
chronyd_pid=$!

# Wait (at most 20 s) until chronyd answers: our sntp example exits 0 on
# the first valid answer, 1 on a timeout.
answered=0
for _ in $(seq 20); do
    if ! kill -0 "$chronyd_pid" 2>/dev/null; then
        cat "$work/chronyd.log"
        echo "interop-client: chronyd exited"
        exit 1
    fi
    if timeout 10 "$SNTP" --timeout 1 "127.0.0.1:$PORT" >"$work/sntp.out" 2>&1; then
        answered=1
        break
    fi
    sleep 1
done
if [ "$answered" != 1 ]; then
    cat "$work/sntp.out" "$work/chronyd.log"
    echo "interop-client: chronyd never answered our sntp example"
    exit 1
fi

step "sntp example against chronyd"
timeout 30 "$SNTP" --json "127.0.0.1:$PORT" >"$work/sntp.json"
cat "$work/sntp.json"
read -r offset stratum leap < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["offset"], d["stratum"], d["leap"])' "$work/sntp.json")
if [ "$stratum" != "$EXPECTED_STRATUM" ]; then
    echo "interop-client: sntp read stratum $stratum, expected $EXPECTED_STRATUM"
    exit 1
fi
echo "interop-client: stratum $stratum, leap $leap: ok"
check_offset "sntp" "$offset"

step "demo (client system) against chronyd, 40 s"
if ! timeout 120 "$DEMO" --server "127.0.0.1:$PORT" --initial-offset 0 --duration 40 --json >"$work/demo.jsonl" 2>"$work/demo.err"; then
    tail -n 20 "$work/demo.jsonl" "$work/demo.err"
    echo "interop-client: the demo run against chronyd failed"
    exit 1
fi
tail -n 3 "$work/demo.jsonl"
read -r tally peer_stratum peer_offset < <(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
tables = [r for r in rows if r.get("type") == "peers"]
last = tables[-1]["peers"][0]
print(last["tally"], last["stratum"], last["offset_ms"] / 1e3)' "$work/demo.jsonl")
if [ "$tally" != "*" ]; then
    echo "interop-client: chronyd is not the system peer (tally '$tally')"
    exit 1
fi
if [ "$peer_stratum" != "$EXPECTED_STRATUM" ]; then
    echo "interop-client: the system read stratum $peer_stratum, expected $EXPECTED_STRATUM"
    exit 1
fi
check_offset "client system" "$peer_offset"

step "ntp-daemon --xleave against chronyd: the interleaved mode (RFC 9769), 20 s"
# A model clock (the system clock is never touched), polling every 2 s;
# --verbose logs every sample with whether its answer was interleaved.
if ! timeout 60 "$DAEMON" --server "127.0.0.1:$PORT" --xleave --min-poll 1 --max-poll 1 \
    --duration 20 --json --verbose >"$work/xleave.jsonl" 2>"$work/xleave.err"; then
    tail -n 20 "$work/xleave.jsonl" "$work/xleave.err"
    echo "interop-client: ntp-daemon --xleave against chronyd failed"
    exit 1
fi
read -r samples interleaved kernel_tx < <(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
samples = [r for r in rows if r.get("type") == "sample"]
print(len(samples), sum(1 for r in samples if r["interleaved"]),
      sum(1 for r in samples if r["tx"] == "K"))' "$work/xleave.jsonl")
echo "interop-client: $interleaved of $samples samples interleaved, $kernel_tx with kernel T1"
if [ "$interleaved" -lt 3 ]; then
    echo "interop-client: chronyd's answers to ntp-daemon --xleave were not interleaved"
    exit 1
fi
# Loopback stamps a datagram inside sendto: every request's T1 is the
# kernel's transmit timestamp.
if [ "$kernel_tx" -ne "$samples" ]; then
    echo "interop-client: a sample without the kernel's transmit timestamp"
    exit 1
fi

kill "$chronyd_pid"
wait "$chronyd_pid" 2>/dev/null || true
chronyd_pid=""

step "interop-client passed"
