#!/usr/bin/env bash
# Interoperability of our NTS server (RFC 8915; issue 13): chronyd 4.3 as
# NTS client of `ntp-daemon --serve --local 1` (NTS-KE over TLS 1.3 and
# NTS-protected NTP), with a self-signed certificate made at test time by
# openssl:
#
#   1. chronyd -Q trusting the certificate runs NTS-KE against the daemon
#      (cookies, and the NTP port from the Port Negotiation record: the
#      server line names only the NTS-KE port) and measures an offset
#      under 10 ms; the daemon's counters show the exchange and that every
#      answer it sent was NTS-protected (nts = answered, no plain answer);
#      the server answers on two worker threads (--serve-threads 2);
#   2. chronyd -Q trusting another self-signed certificate: the TLS
#      handshake fails, no NTP request is sent, no measurement;
#   3. the daemon restarted without a key file (new cookie master key) and
#      chronyd -Q with the cookies it saved in step 1 (ntsdumpdir): the
#      stale cookie gets an NTS NAK, chronyd runs NTS-KE again and
#      measures;
#   4. the daemon with its master keys in --nts-key-file, answering from
#      its loop: chronyd measures (step 1's checks), then, after a
#      restart of the daemon with the same key file, with its saved
#      cookies and no NTS NAK (the keys survived).
#
# Prints a table of cells at the end; exits 1 if any cell failed.
#
# Runs as root in CI after the tests (called from .ci/run). Everything
# stays on 127.0.0.1 (ports 11140 and 11141); nothing touches the system
# clock: chronyd runs with -x and -Q (measure only) and with its
# directives on the command line (never the packaged configuration), the
# daemon runs its model clock and only reads the system clock.
set -euo pipefail
cd "$(dirname "$0")/.."

KE_PORT="${NTP_INTEROP_NTS_SERVER_KE_PORT:-11140}"
NTP_PORT="${NTP_INTEROP_NTS_SERVER_NTP_PORT:-11141}"
MAX_OFFSET=0.010
CHRONY_SECONDS=30

INTEROP_NAME=interop-nts-server
# shellcheck source=interop-lib.sh
source .ci/interop-lib.sh

install_missing chronyd:chrony openssl:openssl

step "building ntp-daemon"
cargo build --release --locked -p ntp-daemon --bin ntp-daemon
TARGET="${CARGO_TARGET_DIR:-target}"
DAEMON="$TARGET/release/ntp-daemon"

work=$(mktemp -d)
serve_pid=""
cleanup() {
    stop_pid "$serve_pid"
    rm -rf "$work"
}
trap cleanup EXIT

step "self-signed certificates (openssl, P-256, 2 days)"
make_cert server "$work"
make_cert other "$work"

results=()
failures=0
# record CELL RESULT: RESULT "ok..." passes, anything else fails.
record() {
    results+=("$1|$2")
    case "$2" in
        ok*) echo "$INTEROP_NAME: $1: $2" ;;
        *)
            failures=$((failures + 1))
            echo "$INTEROP_NAME: FAILED $1: $2"
            ;;
    esac
}

# start_nts_serve LOG ARGS...: the daemon serving this machine's clock
# with NTS-KE on 127.0.0.1:$KE_PORT and NTP on $NTP_PORT, master keys
# random at start, waiting until the NTS-KE listener is up too.
start_nts_serve() {
    local log=$1
    shift
    start_serve_on "127.0.0.1:$NTP_PORT" 120 "$log" \
        --nts-ke-listen "127.0.0.1:$KE_PORT" \
        --nts-cert "$work/server-cert.pem" --nts-key "$work/server-key.pem" "$@"
    wait_for_log "$serve_pid" "$log" 'NTS-KE listening on' "NTS-KE"
}

# chrony_nts TRUSTED DUMPDIR LOG: chronyd -Q as NTS client of the daemon
# (directives on the command line; -x: never touch the clock); its exit
# code.
chrony_nts() {
    local status=0
    timeout $((CHRONY_SECONDS + 10)) chronyd -Q -x -u root -L 0 -t "$CHRONY_SECONDS" \
        "server 127.0.0.1 iburst nts ntsport $KE_PORT" \
        "ntstrustedcerts $1" "ntsdumpdir $2" "pidfile $work/chronyd.pid" \
        >"$3" 2>&1 || status=$?
    return "$status"
}

# measured LOG: chronyd -Q's offset in seconds, empty if none.
measured() {
    sed -n 's/.*System clock wrong by \(-\{0,1\}[0-9.]*\) seconds.*/\1/p' "$1" | tail -n 1
}

# counter LOG LINE NAME: NAME=VALUE from the lines of LOG matching
# LINE (grep -E: the daemon's "served: " or "NTS-KE: ", or in JSON
# '"type":"served"'); the first match, in the part before "kod(" (dropped
# has its own "nts=").
counter() {
    grep -E "$2" "$1" | sed 's/ kod(.*//' | grep -o "\b$3=[0-9]*" | head -n 1 | cut -d= -f2
}

offset_ok() {
    [ -n "$1" ] && awk -v o="$1" -v m="$MAX_OFFSET" 'BEGIN { if (o < 0) o = -o; exit !(o < m) }'
}

# nts_run LOG TRUSTED DUMPDIR CHRONYLOG [ARGS...]: the daemon serving NTS
# (start_nts_serve with ARGS), chronyd -Q trusting TRUSTED with its
# cookies in DUMPDIR (those of an earlier run, if any), the daemon
# stopped; sets status (chronyd's), offset (measured, or empty) and, from
# the daemon's counters, received, answered, nts, ntsn (NTS NAKs) and ke
# (NTS-KE exchanges answered).
nts_run() {
    local log=$1 trusted=$2 dump=$3 chrony_log=$4
    shift 4
    start_nts_serve "$log" "$@"
    status=0
    chrony_nts "$trusted" "$dump" "$chrony_log" || status=$?
    stop_serve "$log"
    offset=$(measured "$chrony_log")
    received=$(counter "$log" 'served: ' received)
    answered=$(counter "$log" 'served: ' answered)
    nts=$(counter "$log" 'served: ' nts)
    ntsn=$(grep 'served: ' "$log" | grep -o 'ntsn=[0-9]*' | cut -d= -f2)
    ke=$(counter "$log" 'NTS-KE: ' answered)
}

# record_measured CELL CHRONYLOG: a measurement under MAX_OFFSET with
# every answer NTS-protected (nts = answered) after NTS-KE.
record_measured() {
    if [ "$status" != 0 ] || ! offset_ok "$offset"; then
        cat "$2"
        record "$1" "no measurement under $MAX_OFFSET s (exit $status, offset '${offset}')"
    elif [ "${ke:-0}" -lt 1 ] || [ "${nts:-0}" -lt 1 ] || [ "$nts" != "$answered" ]; then
        record "$1" "measured, but the daemon shows NTS-KE answered=$ke, answered=$answered nts=$nts"
    else
        record "$1" "ok: offset $offset s after NTS-KE ($ke exchange), $nts NTS answers, no plain one"
    fi
}

mkdir -p "$work/dump" "$work/dump-other" "$work/dump-daemon"
CERT="$work/server-cert.pem"

step "1. chronyd -Q, NTS with the right certificate (two worker threads)"
nts_run "$work/serve1.log" "$CERT" "$work/dump" "$work/chrony1.log" --serve-threads 2
record_measured "chronyd NTS client" "$work/chrony1.log"
grep -q 'changed port to' "$work/chrony1.log" &&
    echo "$INTEROP_NAME: chronyd took the NTP port $NTP_PORT from the NTS-KE Port record"

step "2. chronyd -Q trusting another certificate"
nts_run "$work/serve2.log" "$work/other-cert.pem" "$work/dump-other" "$work/chrony2.log"
if [ -n "$offset" ] || [ "$status" = 0 ]; then
    cat "$work/chrony2.log"
    record "wrong certificate" "chronyd measured (exit $status, offset '$offset')"
elif [ "${received:-1}" != 0 ]; then
    record "wrong certificate" "no measurement, but the daemon received $received NTP requests"
elif ! grep -qi 'certificate' "$work/chrony2.log"; then
    cat "$work/chrony2.log"
    record "wrong certificate" "no measurement, but no certificate error in chronyd's log"
else
    record "wrong certificate" "ok: TLS refused ($(grep -io 'certificate[^.]*' "$work/chrony2.log" | head -n 1)), no request, no measurement"
fi

step "3. the daemon restarted (new master key), chronyd with its saved cookies"
if ! ls "$work/dump"/*.nts >/dev/null 2>&1; then
    record "stale cookies" "chronyd saved no cookies in step 1"
else
    nts_run "$work/serve3.log" "$CERT" "$work/dump" "$work/chrony3.log"
    if [ "$status" != 0 ] || ! offset_ok "$offset"; then
        cat "$work/chrony3.log"
        record "stale cookies" "no measurement after the NAK (exit $status, offset '$offset', ntsn=$ntsn)"
    elif [ "${ntsn:-0}" -lt 1 ] || [ "${ke:-0}" -lt 1 ]; then
        record "stale cookies" "measured, but the daemon shows ntsn=$ntsn and NTS-KE answered=$ke"
    else
        record "stale cookies" "ok: $ntsn NTS NAK, NTS-KE again, offset $offset s"
    fi
fi

step "4. the daemon with its master keys in --nts-key-file, from its loop, across a restart"
nts_run "$work/daemon1.log" "$CERT" "$work/dump-daemon" "$work/chrony4.log" \
    --nts-key-file "$work/nts-keys"
record_measured "daemon NTS server" "$work/chrony4.log"
if ! ls "$work/dump-daemon"/*.nts >/dev/null 2>&1; then
    record "daemon keys kept" "chronyd saved no cookies"
else
    nts_run "$work/daemon2.log" "$CERT" "$work/dump-daemon" "$work/chrony5.log" \
        --nts-key-file "$work/nts-keys"
    if [ "$status" != 0 ] || ! offset_ok "$offset"; then
        cat "$work/chrony5.log"
        record "daemon keys kept" "no measurement after the restart (exit $status, offset '$offset')"
    elif [ "${ntsn:-1}" != 0 ] || [ "${ke:-1}" != 0 ]; then
        record "daemon keys kept" "measured, but the saved cookies got $ntsn NTS NAK(s) and $ke NTS-KE exchange(s)"
    else
        record "daemon keys kept" "ok: saved cookies accepted after the restart (no NAK, no NTS-KE), offset $offset s"
    fi
fi

step "results"
printf '%-22s %s\n' "cell" "result"
for row in "${results[@]}"; do
    printf '%-22s %s\n' "${row%%|*}" "${row#*|}"
done
if [ "$failures" -gt 0 ]; then
    echo "$INTEROP_NAME: $failures cell(s) failed"
    exit 1
fi
echo "$INTEROP_NAME: all cells passed"
