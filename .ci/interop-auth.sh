#!/usr/bin/env bash
# Interoperability of symmetric-key authentication (RFC 5905 section 7.3,
# RFC 8573; issue 12) with real implementations, for MD5, SHA-1, SHA-256
# and AES-128-CMAC keys:
#
#   1. our server, `ntp-daemon --serve --local 1` (chrony-format key
#      file), queried by chronyd -Q: a
#      measured offset under 10 ms with each key; no usable answer with a
#      key id the server lacks or with the wrong secret;
#   2. our `sntp` example against the same server: MAC verified with each
#      key; with the wrong secret or an unknown id the crypto-NAK is
#      ignored ("authentication failed") and sntp times out; and, with
#      the wrong secret, --mac-policy drop (no answer) and answer (an
#      unsigned answer, which sntp and chronyd -Q must both refuse);
#   3. our server (ntpd-format key file) queried by NTPsec's ntpdig -a/-k:
#      exit 0 and the offset with MD5, SHA-1 and AES-128-CMAC (SHA-256 is
#      shown, not required: see there); non-zero with an unknown key id or
#      the wrong secret;
#   4. chronyd as an authenticated server (its own keyfile):
#      a. our `sntp` example (--keys/--key): MAC verified, offset under
#         10 ms; with the wrong secret or an id chronyd lacks, exit 1;
#      b. our ntp-daemon (--key/--keys, model clock): selects chronyd as
#         system peer within 40 s with the right key, never with the wrong
#         secret or an id chronyd lacks.
#
# Every key is drawn at random for the run and written in both key-file
# formats (chrony's `chrony.keys` and ntpd/NTPsec's `ntp.keys`). Prints a
# table of cells at the end; exits 1 if any cell failed.
#
# Runs as root in CI after the tests (called from .ci/run). Everything
# stays on 127.0.0.1 (ports 11130 and 11131); nothing touches the system
# clock: chronyd runs with -x (never control the clock) and with its own
# configuration (never the packaged one), sntp only reads the clock, and
# ntp-daemon steers a model clock (--clock model).
set -euo pipefail
cd "$(dirname "$0")/.."

SERVE_PORT="${NTP_INTEROP_AUTH_PORT:-11130}"
CHRONY_PORT="${NTP_INTEROP_AUTH_CHRONY_PORT:-11131}"
SHARED="${NTP_SHARED:-../shared}"
MAX_OFFSET=0.010
DAEMON_SECONDS=40

INTEROP_NAME=interop-auth
# shellcheck source=interop-lib.sh
source .ci/interop-lib.sh

install_missing chronyd:chrony ntpdig:ntpsec-ntpdig

step "building sntp and ntp-daemon"
cargo build --release --locked -p ntp-client --example sntp
cargo build --release --locked -p ntp-daemon
TARGET="${CARGO_TARGET_DIR:-target}"
SNTP="$TARGET/release/examples/sntp"
DAEMON="$TARGET/release/ntp-daemon"
NTPDIG="$SHARED/interop/ntpdig-port"

work=$(mktemp -d)
serve_pid=""
chronyd_pid=""
daemon_pids=()
cleanup() {
    local pid
    for pid in "${daemon_pids[@]}"; do
        stop_pid "$pid"
    done
    stop_pid "$serve_pid"
    stop_pid "$chronyd_pid"
    rm -rf "$work"
}
trap cleanup EXIT

# The keys: id, chrony's type name, ntpd's type name, secret length in
# octets, and the name in the table. chrony (and our clients) sign with a
# SHA-256 key in NTPv3 requests, which carry the whole 32-octet digest
# (NTPv4 carries 20), and our server answers in kind.
KEYS=(
    "1 MD5 MD5 20 MD5"
    "2 SHA1 SHA1 20 SHA-1"
    "3 SHA256 SHA256 32 SHA-256"
    "4 AES128 AES 16 AES-128-CMAC"
)
# Ids for the failure cases: the wrong secret under an id the server has,
# and an id the server lacks.
WRONG_ID=1
UNKNOWN_ID=9

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# Right keys in both formats; "wrong" files hold other secrets under the
# same ids, and key $UNKNOWN_ID, which no server has. ntpd reads a key of
# more than 20 characters as hexadecimal, so every secret is written in
# hexadecimal (the shortest, AES-128's, has 32 digits).
: >"$work/chrony.keys"
: >"$work/ntp.keys"
: >"$work/wrong-chrony.keys"
: >"$work/wrong-ntp.keys"
for entry in "${KEYS[@]}"; do
    read -r id chrony_type ntpd_type len _ <<<"$entry"
    secret=$(hex "$len")
    wrong=$(hex "$len")
    echo "$id $chrony_type HEX:$secret" >>"$work/chrony.keys"
    echo "$id $ntpd_type $secret" >>"$work/ntp.keys"
    echo "$id $chrony_type HEX:$wrong" >>"$work/wrong-chrony.keys"
    echo "$id $ntpd_type $wrong" >>"$work/wrong-ntp.keys"
done
unknown=$(hex 20)
echo "$UNKNOWN_ID MD5 HEX:$unknown" >>"$work/wrong-chrony.keys"
echo "$UNKNOWN_ID MD5 $unknown" >>"$work/wrong-ntp.keys"

# The results table: one row per cell.
results=()
failures=0
# record CELL KEY RESULT OFFSET: RESULT "ok..." passes, "n/a..." (a
# combination the other implementation cannot do) is shown, anything else
# fails.
record() {
    local offset=$4
    if [ -n "$offset" ]; then
        offset=$(awk -v o="$offset" 'BEGIN { printf "%+.6f", o }')
    fi
    set -- "$1" "$2" "$3" "$offset"
    results+=("$1|$2|$3|$4")
    case "$3" in
        ok* | n/a*) echo "$INTEROP_NAME: $1, $2: $3${4:+, offset $4}" ;;
        *)
            failures=$((failures + 1))
            echo "$INTEROP_NAME: FAILED $1, $2: $3${4:+, offset $4}"
            ;;
    esac
}

# offset_ok OFFSET: |OFFSET| < MAX_OFFSET seconds.
offset_ok() {
    [ -n "$1" ] && awk -v o="$1" -v m="$MAX_OFFSET" 'BEGIN { if (o < 0) o = -o; exit !(o < m) }'
}

# json_field FILE FIELD: FIELD of the JSON object in FILE (empty if none).
json_field() {
    /usr/bin/python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    v = d.get(sys.argv[2])
    print("" if v is None else v)
except Exception:
    print("")' "$1" "$2"
}

# start_serve LOG ARGS...: our server on 127.0.0.1:SERVE_PORT
# (start_serve_on in interop-lib.sh).
start_serve() {
    local log=$1
    shift
    start_serve_on "127.0.0.1:$SERVE_PORT" 300 "$log" "$@"
}

# chronyd_query NAME KEYFILE ID SECONDS: chronyd -Q against our server with key
# ID of KEYFILE; its output in $work/NAME.log, exit status as chronyd's.
# As root (-u root), or it could not remove its pidfile from $work.
chronyd_query() {
    local name=$1 keyfile=$2 id=$3 seconds=$4
    timeout $((seconds + 30)) chronyd -Q -x -u root -t "$seconds" \
        "pidfile $work/$name.pid" "cmdport 0" "keyfile $keyfile" \
        "server 127.0.0.1 port $SERVE_PORT iburst key $id" >"$work/$name.log" 2>&1
}

chronyd_offset() {
    sed -n 's/.*System clock wrong by \([-0-9.e]*\) seconds.*/\1/p' "$1" | tail -n 1
}

# chronyd_accepts CELL ID NAME: chronyd -Q with key ID must measure an
# offset under MAX_OFFSET.
chronyd_accepts() {
    local cell=$1 id=$2 name=$3 offset
    if chronyd_query "q$id" "$work/chrony.keys" "$id" 20; then
        offset=$(chronyd_offset "$work/q$id.log")
        if offset_ok "$offset"; then
            record "$cell" "$name" "ok" "$offset"
        else
            cat "$work/q$id.log"
            record "$cell" "$name" "offset not under $MAX_OFFSET s" "$offset"
        fi
    else
        cat "$work/q$id.log"
        record "$cell" "$name" "no usable answer" ""
    fi
}

# chronyd_refuses CELL TAG ID WHAT: chronyd -Q with key ID of the wrong
# key file must end without a measurement ("Timeout reached").
chronyd_refuses() {
    local cell=$1 tag=$2 id=$3 what=$4
    if chronyd_query "q-$tag" "$work/wrong-chrony.keys" "$id" 10; then
        cat "$work/q-$tag.log"
        record "$cell" "$what (key $id)" "accepted a reply" "$(chronyd_offset "$work/q-$tag.log")"
    elif grep -q 'Timeout reached' "$work/q-$tag.log"; then
        record "$cell" "$what (key $id)" "ok: no usable answer" ""
    else
        cat "$work/q-$tag.log"
        record "$cell" "$what (key $id)" "chronyd failed otherwise" ""
    fi
}

# sntp_accepts CELL PORT ID NAME: our sntp with key ID must get a reply
# whose MAC verifies, offset under MAX_OFFSET.
sntp_accepts() {
    local cell=$1 port=$2 id=$3 name=$4 out="$work/sntp-$2-$3.out" offset
    if timeout 30 "$SNTP" --timeout 5 --keys "$work/chrony.keys" --key "$id" \
        "127.0.0.1:$port" >"$out" 2>&1; then
        offset=$(sed -n 's/^offset *\([-+0-9.e]*\) s$/\1/p' "$out")
        if ! grep -q "^auth *key $id (.*), MAC verified" "$out"; then
            cat "$out"
            record "$cell" "$name" "no 'MAC verified' line" "$offset"
        elif offset_ok "$offset"; then
            record "$cell" "$name" "ok" "$offset"
        else
            cat "$out"
            record "$cell" "$name" "offset not under $MAX_OFFSET s" "$offset"
        fi
    else
        cat "$out"
        record "$cell" "$name" "no measurement" ""
    fi
}

# sntp_refuses CELL PORT TAG ID WHAT EXPECT: our sntp with key ID of the
# wrong key file must exit 1 after its timeout; EXPECT is what its
# message must say about the ignored answer ("" for no answer at all,
# "any" for either).
sntp_refuses() {
    local cell=$1 port=$2 tag=$3 id=$4 what=$5 expect=$6 out="$work/sntp-$2-$3.out" status=0
    timeout 30 "$SNTP" --timeout 2 --keys "$work/wrong-chrony.keys" --key "$id" \
        "127.0.0.1:$port" >"$out" 2>&1 || status=$?
    cat "$out"
    if [ "$status" = 0 ]; then
        record "$cell" "$what (key $id)" "accepted a reply" ""
    elif [ "$status" != 1 ]; then
        record "$cell" "$what (key $id)" "exit $status, not 1" ""
    elif [ "$expect" = any ]; then
        if grep -qi 'authentication failed' "$out"; then
            record "$cell" "$what (key $id)" "ok: exit 1, authentication failed" ""
        else
            record "$cell" "$what (key $id)" "ok: exit 1, no answer" ""
        fi
    elif [ -z "$expect" ]; then
        if grep -q 'ignored a datagram' "$out"; then
            record "$cell" "$what (key $id)" "an answer came, expected none" ""
        else
            record "$cell" "$what (key $id)" "ok: exit 1, no answer" ""
        fi
    elif grep -qi "$expect" "$out"; then
        record "$cell" "$what (key $id)" "ok: exit 1, $expect" ""
    else
        record "$cell" "$what (key $id)" "exit 1 without '$expect'" ""
    fi
}

FAILURES=("wrong:$WRONG_ID:wrong secret" "unknown:$UNKNOWN_ID:unknown key id")

# ---------------------------------------------------------------------
step "1. chronyd -Q against our server (chrony-format key file, --mac-policy nak)"
start_serve "$work/serve-chrony.log" --keys "$work/chrony.keys"
for entry in "${KEYS[@]}"; do
    read -r id _ _ _ name <<<"$entry"
    chronyd_accepts "ntp-daemon <- chronyd -Q" "$id" "$name"
done
for case in "${FAILURES[@]}"; do
    IFS=: read -r tag id what <<<"$case"
    chronyd_refuses "ntp-daemon <- chronyd -Q" "$tag" "$id" "$what"
done

# ---------------------------------------------------------------------
step "2. sntp against our server (the same server)"
for entry in "${KEYS[@]}"; do
    read -r id _ _ _ name <<<"$entry"
    sntp_accepts "ntp-daemon <- sntp" "$SERVE_PORT" "$id" "$name"
done
# The server answers a MAC that fails with a crypto-NAK, which sntp
# refuses by name.
for case in "${FAILURES[@]}"; do
    IFS=: read -r tag id what <<<"$case"
    sntp_refuses "ntp-daemon <- sntp" "$SERVE_PORT" "$tag" "$id" "$what" "crypto-NAK"
done
stop_serve "$work/serve-chrony.log"

# ---------------------------------------------------------------------
step "2b. the other --mac-policy values: drop (no answer) and answer (unsigned)"
start_serve "$work/serve-drop.log" --keys "$work/chrony.keys" --mac-policy drop
sntp_refuses "ntp-daemon (drop) <- sntp" "$SERVE_PORT" drop "$WRONG_ID" "wrong secret" ""
chronyd_refuses "ntp-daemon (drop) <- chronyd -Q" drop "$WRONG_ID" "wrong secret"
stop_serve "$work/serve-drop.log"
start_serve "$work/serve-answer.log" --keys "$work/chrony.keys" --mac-policy answer
sntp_refuses "ntp-daemon (answer) <- sntp" "$SERVE_PORT" answer "$WRONG_ID" "wrong secret" \
    "authentication failed"
chronyd_refuses "ntp-daemon (answer) <- chronyd -Q" answer "$WRONG_ID" "wrong secret"
sntp_accepts "ntp-daemon (answer) <- sntp" "$SERVE_PORT" 1 "MD5, right key"
stop_serve "$work/serve-answer.log"

# ---------------------------------------------------------------------
step "3. ntpdig against our server (ntpd-format key file)"
start_serve "$work/serve-ntpd.log" --keys "$work/ntp.keys" --keys-format ntpd
for entry in "${KEYS[@]}"; do
    read -r id _ _ _ name <<<"$entry"
    cell="ntp-daemon <- ntpdig"
    if NTPDIG_PORT=$SERVE_PORT timeout 30 "$NTPDIG" -j -t 5 -a "$id" -k "$work/ntp.keys" \
        127.0.0.1 >"$work/ntpdig-$id.json" 2>"$work/ntpdig-$id.err"; then
        offset=$(json_field "$work/ntpdig-$id.json" offset)
        if offset_ok "$offset"; then
            record "$cell" "$name" "ok" "$offset"
        else
            cat "$work/ntpdig-$id.json" "$work/ntpdig-$id.err"
            record "$cell" "$name" "offset not under $MAX_OFFSET s" "$offset"
        fi
    elif [ "$name" = SHA-256 ]; then
        # ntpdig 1.2.2 signs an NTPv4 request with the whole 32-octet
        # SHA-256 digest: a 36-octet trailer, which an NTPv4 parser takes
        # for an extension field (RFC 7822), a malformed one, so our server
        # drops the request (bad_packet), and chronyd 4.3 does not answer
        # it either. Shown, not counted as a failure.
        record "$cell" "$name" "n/a: ntpdig's 36-octet NTPv4 MAC (chronyd drops it too)" ""
    else
        cat "$work/ntpdig-$id.json" "$work/ntpdig-$id.err"
        record "$cell" "$name" "no usable answer" ""
    fi
done
# ntpdig 1.2.2 fails a reply whose MAC does not verify (the crypto-NAK)
# with a traceback: read_append sets `trusted` on the request's bytes
# instead of the reply, just before it would log "MAC verification on
# reply from ... failed". Either way it exits non-zero.
for case in "${FAILURES[@]}"; do
    IFS=: read -r tag id what <<<"$case"
    cell="ntp-daemon <- ntpdig"
    if NTPDIG_PORT=$SERVE_PORT timeout 30 "$NTPDIG" -j -t 3 -a "$id" -k "$work/wrong-ntp.keys" \
        127.0.0.1 >"$work/ntpdig-$tag.json" 2>"$work/ntpdig-$tag.err"; then
        cat "$work/ntpdig-$tag.json" "$work/ntpdig-$tag.err"
        record "$cell" "$what (key $id)" "accepted a reply" ""
    elif grep -q -e 'MAC verification on reply from .* failed' \
        -e "'bytes' object has no attribute 'trusted'" "$work/ntpdig-$tag.err"; then
        record "$cell" "$what (key $id)" "ok: fails, MAC verification failed" ""
    else
        cat "$work/ntpdig-$tag.json" "$work/ntpdig-$tag.err"
        record "$cell" "$what (key $id)" "failed without a MAC verification failure" ""
    fi
done
stop_serve "$work/serve-ntpd.log"

# ---------------------------------------------------------------------
step "4. chronyd as an authenticated server on 127.0.0.1:$CHRONY_PORT"
cat >"$work/chrony.conf" <<EOF
port $CHRONY_PORT
bindaddress 127.0.0.1
cmdport 0
local stratum 3
allow 127.0.0.1
keyfile $work/chrony.keys
pidfile $work/chronyd-server.pid
driftfile $work/drift
EOF
chronyd -x -u root -d -f "$work/chrony.conf" >"$work/chronyd-server.log" 2>&1 &
chronyd_pid=$!

# Wait (at most 20 s) until chronyd answers an authenticated request.
answered=0
for _ in $(seq 20); do
    if ! kill -0 "$chronyd_pid" 2>/dev/null; then
        cat "$work/chronyd-server.log"
        echo "$INTEROP_NAME: chronyd exited"
        exit 1
    fi
    if timeout 10 "$SNTP" --timeout 1 --keys "$work/chrony.keys" --key 1 \
        "127.0.0.1:$CHRONY_PORT" >"$work/sntp-wait.out" 2>&1; then
        answered=1
        break
    fi
    sleep 1
done
if [ "$answered" != 1 ]; then
    cat "$work/sntp-wait.out" "$work/chronyd-server.log"
    echo "$INTEROP_NAME: chronyd never answered our sntp example"
    exit 1
fi

step "4a. sntp against chronyd"
for entry in "${KEYS[@]}"; do
    read -r id _ _ _ name <<<"$entry"
    sntp_accepts "chronyd <- sntp" "$CHRONY_PORT" "$id" "$name"
done
# chrony 4.3 answers no request whose MAC fails (no crypto-NAK), so sntp
# waits for its timeout.
for case in "${FAILURES[@]}"; do
    IFS=: read -r tag id what <<<"$case"
    sntp_refuses "chronyd <- sntp" "$CHRONY_PORT" "$tag" "$id" "$what" any
done

# One daemon per key, all at once: the run takes DAEMON_SECONDS, not six
# times that.
step "4b. ntp-daemon against chronyd, ${DAEMON_SECONDS} s, one run per key at once"
# start_daemon NAME KEYFILE ID
start_daemon() {
    timeout $((DAEMON_SECONDS + 30)) "$DAEMON" --server "127.0.0.1:$CHRONY_PORT" --key "$3" \
        --keys "$2" --clock model --duration "$DAEMON_SECONDS" --table-every 5 --json --verbose \
        >"$work/daemon-$1.jsonl" 2>"$work/daemon-$1.err" &
    daemon_pids+=($!)
}
for entry in "${KEYS[@]}"; do
    read -r id _ _ _ _ <<<"$entry"
    start_daemon "$id" "$work/chrony.keys" "$id"
done
start_daemon wrong "$work/wrong-chrony.keys" "$WRONG_ID"
start_daemon unknown "$work/wrong-chrony.keys" "$UNKNOWN_ID"

for pid in "${daemon_pids[@]}"; do
    wait "$pid" || true
done
daemon_pids=()

# daemon_summary FILE: "STOPPED SELECTED OFFSET REACHED REFUSED AUTH" from a
# daemon's JSON lines: whether it ended normally (a "stop" line), whether
# any peer table showed chronyd as system peer, its offset in the last
# such table (seconds, "-" if none), whether any table showed a reply
# (reach not 0), how many datagrams it refused and how many of those for
# "authentication failed".
daemon_summary() {
    /usr/bin/python3 -c '
import json, sys
stopped = selected = reached = refused = auth = 0
offset = "-"
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    kind = r.get("type")
    if kind == "stop":
        stopped = 1
    elif kind == "refused":
        refused += 1
        auth += "authentication failed" in r.get("error", "")
    elif kind == "peers":
        for row in r["peers"]["rows"]:
            reached |= row.get("reach", 0) != 0
            if row.get("tally") == "system_peer":
                selected = 1
                if row.get("offset_ms") is not None:
                    offset = row["offset_ms"] / 1e3
print(stopped, selected, offset, int(reached), refused, auth)' "$1"
}

for entry in "${KEYS[@]}"; do
    read -r id _ _ _ name <<<"$entry"
    cell="chronyd <- ntp-daemon"
    log="$work/daemon-$id.jsonl"
    read -r stopped selected offset _ _ _ < <(daemon_summary "$log")
    [ "$offset" = - ] && offset=""
    if [ "$stopped" != 1 ]; then
        tail -n 20 "$log" "$work/daemon-$id.err"
        record "$cell" "$name" "the daemon did not run to its end" "$offset"
    elif [ "$selected" != 1 ]; then
        tail -n 20 "$log" "$work/daemon-$id.err"
        record "$cell" "$name" "never selected chronyd" "$offset"
    elif offset_ok "$offset"; then
        record "$cell" "$name" "ok: system peer" "$offset"
    else
        record "$cell" "$name" "offset not under $MAX_OFFSET s" "$offset"
    fi
done
# chrony 4.3 answers no request whose MAC fails, so the daemon hears
# nothing; a server that answers (a crypto-NAK, say) must see its
# datagrams refused for authentication.
for case in "${FAILURES[@]}"; do
    IFS=: read -r tag id what <<<"$case"
    cell="chronyd <- ntp-daemon"
    log="$work/daemon-$tag.jsonl"
    read -r stopped selected _ reached refused auth < <(daemon_summary "$log")
    if [ "$stopped" != 1 ]; then
        tail -n 20 "$log" "$work/daemon-$tag.err"
        record "$cell" "$what (key $id)" "the daemon did not run to its end" ""
    elif [ "$selected" = 1 ] || [ "$reached" = 1 ]; then
        tail -n 20 "$log" "$work/daemon-$tag.err"
        record "$cell" "$what (key $id)" "accepted a reply (system peer: $selected)" ""
    elif [ "$auth" != "$refused" ]; then
        grep '"refused"' "$log" | head -n 5
        record "$cell" "$what (key $id)" "refused for another reason than authentication" ""
    elif [ "$refused" -gt 0 ]; then
        record "$cell" "$what (key $id)" "ok: never selected, $auth auth failures" ""
    else
        record "$cell" "$what (key $id)" "ok: never selected, no answer" ""
    fi
done

stop_pid "$chronyd_pid"
chronyd_pid=""

# ---------------------------------------------------------------------
step "results"
print_results "cell|key|result|offset (s)"
echo
echo "chrony: $(chronyd --version | head -n 1)"
echo "ntpdig: NTPsec $(dpkg-query -W -f '${Version}' ntpsec-ntpdig 2>/dev/null || echo unknown)"

if [ "$failures" -gt 0 ]; then
    echo "$INTEROP_NAME: $failures cell(s) failed"
    exit 1
fi
step "interop-auth passed"
