#!/usr/bin/env bash
# Interoperability of our server program, `ntp-daemon --serve --local 1`
# (a primary server of this machine's clock), with real clients: chronyd
# one-shot (-Q), NTPsec's ntpdig and Python's ntplib (whose default
# request is NTPv2, answered in NTPv2) must accept its answers (exit 0,
# |offset| under 10 ms), answered from the loop and from worker threads
# (--serve-threads), and ntpdig must recognise its Kiss-o'-Death DENY.
# Then the daemon as a stratum-1 server of a SOCK reference clock (a
# stand-in for gpsd writing chrony's socket protocol): stratum 1, refid
# GPS, accepted by chronyd and ntpdig. Last, chronyd with `xleave` as a
# client (not -Q: it keeps polling, and chronyc reads its `ntpdata`): our
# answers after the first must be in the interleaved mode, with the
# kernel's transmit timestamps.
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
# Debian's python3-ntplib is for Debian's python3 (not a pyenv one that
# may come first on the PATH).
SYSTEM_PYTHON=/usr/bin/python3
[ -x "$SYSTEM_PYTHON" ] || SYSTEM_PYTHON=python3
if ! "$SYSTEM_PYTHON" -c 'import ntplib' 2>/dev/null; then
    step "installing python3-ntplib"
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3-ntplib
fi

step "building ntp-daemon"
cargo build --release --locked -p ntp-daemon --bin ntp-daemon
DAEMON=target/release/ntp-daemon

work=$(mktemp -d)
serve_pid=""
cleanup() {
    stop_pid "$serve_pid"
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

# stop_server LOG: Ctrl-C, then the counters line must be printed (not
# in a pipeline: stop_serve waits for its child, which a subshell cannot).
stop_server() {
    stop_serve "$1" >/dev/null
    grep 'served: ' "$1"
}

# chronyd_check SERVER NAME: chronyd -Q measures SERVER (on 127.0.0.1:PORT)
# with an offset under MAX_OFFSET; NAME names its files.
chronyd_check() {
    if ! timeout 60 chronyd -Q -x -t 20 "pidfile $work/$2.pid" \
        "server 127.0.0.1 port $PORT iburst" >"$work/$2.log" 2>&1; then
        cat "$work/$2.log"
        echo "interop: chronyd -Q did not accept the answers of $1"
        exit 1
    fi
    cat "$work/$2.log"
    local offset
    offset=$(sed -n 's/.*System clock wrong by \([-0-9.e]*\) seconds.*/\1/p' "$work/$2.log" | tail -n 1)
    if [ -z "$offset" ]; then
        echo "interop: no offset in chronyd's output ($1)"
        exit 1
    fi
    check_offset "chronyd -Q against $1" "$offset"
}

# ntpdig_check SERVER NAME: ntpdig accepts SERVER's answer (on
# 127.0.0.1:PORT), stratum 1, offset under MAX_OFFSET; NAME names its file.
ntpdig_check() {
    if ! NTPDIG_PORT=$PORT timeout 30 "$SHARED/interop/ntpdig-port" -j 127.0.0.1 >"$work/$2.json" 2>&1; then
        cat "$work/$2.json"
        echo "interop: ntpdig did not accept the answers of $1"
        exit 1
    fi
    cat "$work/$2.json"
    local offset stratum
    read -r offset stratum < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["offset"], d["stratum"])' "$work/$2.json")
    if [ "$stratum" != 1 ]; then
        echo "interop: ntpdig saw stratum $stratum from $1, expected 1"
        exit 1
    fi
    check_offset "ntpdig against $1" "$offset"
}

step "chronyd -Q against our server"
start_server "$work/serve.log"
chronyd_check ntp-daemon chronyd

step "ntpdig against our server"
ntpdig_check ntp-daemon ntpdig

step "Python's ntplib, its default request (NTPv2), against our server"
if ! read -r version offset < <(timeout 30 "$SYSTEM_PYTHON" - "$PORT" <<'PY'
import sys, ntplib
# ntplib's default: version=2. Three tries of 2 s each.
for _ in range(3):
    try:
        r = ntplib.NTPClient().request("127.0.0.1", port=int(sys.argv[1]), timeout=2)
        print(r.version, r.offset)
        break
    except ntplib.NTPException:
        pass
else:
    sys.exit(1)
PY
); then
    echo "interop: ntplib got no answer to its NTPv2 request"
    exit 1
fi
echo "ntplib: answer in version $version, offset $offset s"
if [ "$version" != 2 ]; then
    echo "interop: ntplib's NTPv2 request was answered in version $version"
    exit 1
fi
check_offset "ntplib" "$offset"
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

step "chronyd -Q and ntpdig against our server on two worker threads (--serve-threads 2)"
start_server "$work/threads.log" --serve-threads 2
chronyd_check "ntp-daemon --serve-threads 2" chronyd-threads
ntpdig_check "ntp-daemon --serve-threads 2" ntpdig-threads
stop_server "$work/threads.log"

step "chronyd -Q and ntpdig against our stratum-1 server fed by a SOCK reference clock"
# A stand-in for gpsd writes chrony's socket records (the system clock,
# taken as true) to the daemon's socket four times a second; the daemon
# must serve stratum 1 with refid GPS, and chronyd and ntpdig accept it.
sock="$work/chrony.fake0.sock"
"$DAEMON" --serve "127.0.0.1:$PORT" --default-action allow --duration 60 \
    --refclock "SOCK:$sock,refid=GPS,poll=1" >"$work/refclock.log" 2>&1 &
serve_pid=$!
python3 - "$sock" 50 <<'PY' &
import socket, struct, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
end = time.time() + seconds
while time.time() < end:
    now = time.time()
    record = struct.pack("=qqdiiii", int(now), int(now % 1 * 1e6), 0.0, 0, 0, 0, 0x534F434B)
    try:
        s.sendto(record, path)
    except OSError:
        pass  # the daemon has not bound the socket yet, or has exited
    time.sleep(0.25)
PY
writer_pid=$!
wait_for_log "$serve_pid" "$work/refclock.log" 'synchronized to GPS' "ntp-daemon --refclock SOCK"
cat "$work/refclock.log"
if ! read -r stratum refid < <(timeout 10 python3 - "$PORT" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"\x23" + bytes(47), ("127.0.0.1", int(sys.argv[1])))
reply = s.recv(512)
print(reply[1], reply[12:16].rstrip(b"\0").decode("ascii", "replace"))
PY
); then
    echo "interop: no answer from the stratum-1 server"
    exit 1
fi
echo "our stratum-1 server: stratum $stratum, refid $refid"
if [ "$stratum" != 1 ] || [ "$refid" != GPS ]; then
    echo "interop: expected stratum 1 and refid GPS"
    exit 1
fi
chronyd_check "ntp-daemon --refclock SOCK" chronyd-refclock
ntpdig_check "ntp-daemon --refclock SOCK" ntpdig-refclock
stop_server "$work/refclock.log"
kill "$writer_pid" 2>/dev/null || true
wait "$writer_pid" 2>/dev/null || true

step "chronyd with xleave against our server: the interleaved mode (RFC 9769)"
# chronyd polls every 0.25 s in the interleaved mode and reads, through
# chronyc on its command socket, how our answers came: after the first
# exchange every answer must be interleaved.
start_server "$work/xleave.log" --rule 127.0.0.1/32=allow
xdir="$work/xleave"
mkdir -m 700 "$xdir"
timeout 30 chronyd -u root -d -x -f /dev/null "pidfile $xdir/chronyd.pid" "cmdport 0" \
    "bindcmdaddress $xdir/chronyd.sock" \
    "server 127.0.0.1 port $PORT xleave minpoll -2 maxpoll -2 iburst" >"$xdir/chronyd.log" 2>&1 &
xleave_pid=$!
interleaved=""
for _ in $(seq 1 40); do
    sleep 0.5
    ntpdata=$(chronyc -h "$xdir/chronyd.sock" ntpdata 2>/dev/null || true)
    if grep -q '^Interleaved *: Yes' <<<"$ntpdata" \
        && [ "$(sed -n 's/^Total valid RX *: //p' <<<"$ntpdata")" -ge 10 ]; then
        interleaved=yes
        break
    fi
done
stop_pid "$xleave_pid"
echo "$ntpdata"
stop_server "$work/xleave.log"
if [ -z "$interleaved" ]; then
    cat "$xdir/chronyd.log"
    echo "interop: chronyd (xleave) did not see interleaved answers from our server"
    exit 1
fi
# The transmit times in those answers are the kernel's (the datagrams
# looped back to the error queue), as chronyd's own are.
if ! grep -q 'timestamps: kernel (SO_TIMESTAMPING, software, receive and transmit)' \
    "$work/xleave.log"; then
    head -3 "$work/xleave.log"
    echo "interop: our server did not get kernel transmit timestamps"
    exit 1
fi

step "interop passed"
