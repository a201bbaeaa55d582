#!/usr/bin/env bash
# Interoperability of our NTS client (RFC 8915; issue 13) with chronyd 4.3
# as NTS-KE and NTS server, with a self-signed certificate made at test
# time by openssl:
#
#   1. our ntp-daemon (--nts 127.0.0.1:KE --nts-ca cert.pem, model clock)
#      gets cookies from chronyd's NTS-KE and selects chronyd as system
#      peer with an offset under 10 ms within 40 s;
#   2. the same daemon trusting another self-signed certificate: NTS-KE
#      fails (certificate), is retried, no request is sent, it never
#      synchronizes;
#   3. tampered responses: a second chronyd advertises, in its NTS-KE
#      response, an NTP server address (`ntsntpserver 127.0.0.2`) where a
#      UDP relay (below) forwards requests to chronyd's NTP port and flips
#      one octet of each response's authenticator ciphertext on the way
#      back. The daemon gets its cookies, sends its requests through the
#      relay, refuses every answer ("NTS: the answer is not authentic")
#      and never synchronizes. chrony 4.3 has no directive to advertise
#      another port (its Port Negotiation record always carries its own
#      `port`), so the relay listens on the same port on 127.0.0.2 while
#      chronyd binds 127.0.0.1 only.
#
# Prints a table of cells at the end; exits 1 if any cell failed.
#
# Runs as root in CI after the tests (called from .ci/run). Everything
# stays on 127.0.0.0/8 (ports 11150 to 11153); nothing touches the system
# clock: chronyd runs with -x and its own configuration, the daemon steers
# a model clock.
set -euo pipefail
cd "$(dirname "$0")/.."

KE_PORT="${NTP_INTEROP_NTS_KE_PORT:-11150}"
NTP_PORT="${NTP_INTEROP_NTS_NTP_PORT:-11151}"
TAMPER_KE_PORT="${NTP_INTEROP_NTS_TAMPER_KE_PORT:-11152}"
TAMPER_NTP_PORT="${NTP_INTEROP_NTS_TAMPER_NTP_PORT:-11153}"
RELAY_ADDRESS=127.0.0.2
MAX_OFFSET=0.010
DAEMON_SECONDS=40

INTEROP_NAME=interop-nts-client
# shellcheck source=interop-lib.sh
source .ci/interop-lib.sh

install_missing chronyd:chrony openssl:openssl python3:python3

step "building ntp-daemon"
cargo build --release --locked -p ntp-daemon
TARGET="${CARGO_TARGET_DIR:-target}"
DAEMON="$TARGET/release/ntp-daemon"

work=$(mktemp -d)
chronyd_pids=()
relay_pid=""
daemon_pids=()
cleanup() {
    local pid
    for pid in "${daemon_pids[@]}" "${chronyd_pids[@]}"; do
        stop_pid "$pid"
    done
    stop_pid "$relay_pid"
    rm -rf "$work"
}
trap cleanup EXIT

results=()
failed=0
# record CELL CASE RESULT OFFSET: a row of the table; RESULT starting with
# "ok" passes, anything else fails the run.
record() {
    results+=("$1|$2|$3|$4")
    case "$3" in
    ok*) ;;
    *) failed=1 ;;
    esac
}

# ---------------------------------------------------------------------
step "certificates (openssl, self-signed, P-256, CN and SAN localhost/127.0.0.1)"
make_cert server "$work"
make_cert other "$work"
chmod 600 "$work"/*-key.pem

# start_chronyd NAME KE_PORT NTP_PORT EXTRA: chronyd as NTS-KE and NTS
# server on 127.0.0.1, local stratum 3, its own directories; waits (at
# most 20 s) until its NTS-KE port accepts connections.
start_chronyd() {
    local name=$1 ke=$2 ntp=$3 extra=$4
    mkdir -p "$work/$name-dump"
    cat >"$work/$name.conf" <<EOF
bindaddress 127.0.0.1
port $ntp
ntsport $ke
ntsserverkey $work/server-key.pem
ntsservercert $work/server-cert.pem
ntsdumpdir $work/$name-dump
local stratum 3
allow 127.0.0.1
cmdport 0
pidfile $work/$name.pid
$extra
EOF
    chronyd -x -u root -d -f "$work/$name.conf" >"$work/$name.log" 2>&1 &
    chronyd_pids+=($!)
    local pid=$!
    for _ in $(seq 200); do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$work/$name.log"
            echo "$INTEROP_NAME: chronyd ($name) exited"
            exit 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$ke") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    cat "$work/$name.log"
    echo "$INTEROP_NAME: chronyd ($name) does not listen on NTS-KE port $ke"
    exit 1
}

step "chronyd: NTS-KE 127.0.0.1:$KE_PORT, NTP 127.0.0.1:$NTP_PORT"
start_chronyd plain "$KE_PORT" "$NTP_PORT" ""
step "chronyd: NTS-KE 127.0.0.1:$TAMPER_KE_PORT advertising $RELAY_ADDRESS:$TAMPER_NTP_PORT"
start_chronyd tamper "$TAMPER_KE_PORT" "$TAMPER_NTP_PORT" "ntsntpserver $RELAY_ADDRESS"

# The relay: requests to chronyd as they are, each answer with the first
# octet of its NTS Authenticator's ciphertext flipped (RFC 8915 section
# 5.6: type 0x0404, then nonce length, ciphertext length, nonce padded to
# 4 octets, ciphertext).
cat >"$work/tamper-relay.py" <<'EOF'
import socket
import struct
import sys


def tamper(packet):
    packet = bytearray(packet)
    at = 48
    while at + 4 <= len(packet):
        field_type, length = struct.unpack_from("!HH", packet, at)
        if length < 4:
            break
        if field_type == 0x0404 and at + 8 <= len(packet):
            nonce_len, _ = struct.unpack_from("!HH", packet, at + 4)
            ciphertext = at + 8 + (nonce_len + 3) // 4 * 4
            if ciphertext < len(packet):
                packet[ciphertext] ^= 0x01
                return bytes(packet), True
        at += length
    return bytes(packet), False


def main():
    host, port, server_host, server_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    inbound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inbound.bind((host, port))
    outbound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    outbound.bind(("127.0.0.1", 0))
    outbound.settimeout(2)
    print(f"relaying {host}:{port} to {server_host}:{server_port}, tampering", flush=True)
    while True:
        request, client = inbound.recvfrom(2048)
        outbound.sendto(request, (server_host, server_port))
        try:
            answer, _ = outbound.recvfrom(2048)
        except socket.timeout:
            print("no answer", flush=True)
            continue
        answer, flipped = tamper(answer)
        print(f"answer of {len(answer)} octets, authenticator flipped: {flipped}", flush=True)
        inbound.sendto(answer, client)


if __name__ == "__main__":
    main()
EOF
python3 "$work/tamper-relay.py" "$RELAY_ADDRESS" "$TAMPER_NTP_PORT" 127.0.0.1 "$TAMPER_NTP_PORT" \
    >"$work/relay.log" 2>&1 &
relay_pid=$!

# ---------------------------------------------------------------------
step "ntp-daemon as NTS client, ${DAEMON_SECONDS} s, three runs at once"
# start_daemon NAME KE_PORT CA
start_daemon() {
    timeout $((DAEMON_SECONDS + 30)) "$DAEMON" --nts "127.0.0.1:$2" --nts-ca "$3" \
        --clock model --duration "$DAEMON_SECONDS" --table-every 5 --json --verbose \
        >"$work/daemon-$1.jsonl" 2>"$work/daemon-$1.err" &
    daemon_pids+=($!)
}
start_daemon good "$KE_PORT" "$work/server-cert.pem"
start_daemon wrong-ca "$KE_PORT" "$work/other-cert.pem"
start_daemon tampered "$TAMPER_KE_PORT" "$work/server-cert.pem"
for pid in "${daemon_pids[@]}"; do
    wait "$pid" || true
done
daemon_pids=()

# daemon_summary FILE: "STOPPED KE_OK KE_FAILED COOKIES AEAD SELECTED
# OFFSET REACHED REFUSED NTS_REFUSED NTP_SERVER" from a daemon's JSON
# lines.
daemon_summary() {
    python3 -c '
import json, sys
stopped = ke_ok = ke_failed = cookies = selected = reached = refused = nts = 0
aead = ntp_server = error = "-"
offset = "-"
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    kind = r.get("type")
    if kind == "stop":
        stopped = 1
    elif kind == "nts_ke":
        if r.get("ok"):
            ke_ok += 1
            cookies = r.get("cookies", 0)
            aead = r.get("aead", "-")
            ntp_server = r.get("ntp_server", "-")
        else:
            ke_failed += 1
            error = r.get("error", "-").replace(" ", "_")[:60]
    elif kind == "refused":
        refused += 1
        nts += "NTS:" in r.get("error", "")
    elif kind == "peers":
        for row in r["peers"]["rows"]:
            reached |= row.get("reach", 0) != 0
            if row.get("tally") == "system_peer":
                selected = 1
                if row.get("offset_ms") is not None:
                    offset = row["offset_ms"] / 1e3
print(stopped, ke_ok, ke_failed, cookies, aead, selected, offset, int(reached), refused, nts, ntp_server, error)' "$1"
}

show() {
    tail -n 20 "$work/daemon-$1.jsonl" "$work/daemon-$1.err"
}

# 1. The good run.
cell="chronyd <- ntp-daemon --nts"
read -r stopped ke_ok _ cookies aead selected offset _ refused _ ntp_server _ \
    < <(daemon_summary "$work/daemon-good.jsonl")
[ "$offset" = - ] && offset=""
if [ "$stopped" != 1 ]; then
    show good
    record "$cell" "trusted certificate" "the daemon did not run to its end" "$offset"
elif [ "$ke_ok" -lt 1 ] || [ "$cookies" -lt 1 ]; then
    show good
    record "$cell" "trusted certificate" "no cookies from NTS-KE" "$offset"
elif [ "$selected" != 1 ]; then
    show good
    record "$cell" "trusted certificate" "never selected chronyd" "$offset"
elif [ "$refused" != 0 ]; then
    grep '"refused"' "$work/daemon-good.jsonl" | head -n 5
    record "$cell" "trusted certificate" "$refused answers refused" "$offset"
elif ! awk -v o="$offset" -v m="$MAX_OFFSET" 'BEGIN { if (o < 0) o = -o; exit !(o < m) }'; then
    record "$cell" "trusted certificate" "offset not under $MAX_OFFSET s" "$offset"
else
    record "$cell" "trusted certificate" "ok: $cookies cookies, $aead, NTP $ntp_server, system peer" "$offset"
fi

# 2. The wrong CA.
read -r stopped ke_ok ke_failed _ _ selected _ reached _ _ _ error \
    < <(daemon_summary "$work/daemon-wrong-ca.jsonl")
if [ "$stopped" != 1 ]; then
    show wrong-ca
    record "$cell" "another certificate as CA" "the daemon did not run to its end" ""
elif [ "$ke_ok" != 0 ] || [ "$selected" = 1 ] || [ "$reached" = 1 ]; then
    show wrong-ca
    record "$cell" "another certificate as CA" "NTS-KE succeeded or a reply was used" ""
elif [ "$ke_failed" -lt 2 ]; then
    show wrong-ca
    record "$cell" "another certificate as CA" "NTS-KE not retried ($ke_failed attempts)" ""
else
    record "$cell" "another certificate as CA" "ok: $ke_failed NTS-KE failures (${error//_/ }), never synchronized" ""
fi

# 3. The tampered responses.
read -r stopped ke_ok _ cookies _ selected _ reached refused nts ntp_server _ \
    < <(daemon_summary "$work/daemon-tampered.jsonl")
flipped=$(grep -c "authenticator flipped: True" "$work/relay.log" || true)
if [ "$stopped" != 1 ]; then
    show tampered
    record "$cell" "tampered authenticator" "the daemon did not run to its end" ""
elif [ "$ke_ok" -lt 1 ] || [ "$ntp_server" != "$RELAY_ADDRESS:$TAMPER_NTP_PORT" ]; then
    show tampered
    cat "$work/tamper.log"
    record "$cell" "tampered authenticator" "NTS-KE did not name the relay ($ntp_server)" ""
elif [ "$selected" = 1 ] || [ "$reached" = 1 ]; then
    show tampered
    record "$cell" "tampered authenticator" "a tampered answer was used" ""
elif [ "$flipped" -lt 1 ] || [ "$refused" -lt 1 ] || [ "$nts" != "$refused" ]; then
    show tampered
    cat "$work/relay.log"
    record "$cell" "tampered authenticator" "expected NTS refusals: $flipped flipped, $refused refused, $nts for NTS" ""
else
    record "$cell" "tampered authenticator" "ok: $flipped tampered answers, all $nts refused (NTS), never synchronized" ""
fi

for pid in "${chronyd_pids[@]}"; do
    stop_pid "$pid"
done
chronyd_pids=()
stop_pid "$relay_pid"
relay_pid=""

# ---------------------------------------------------------------------
step "results"
print_results "cell|case|result|offset (s)"
if [ "$failed" != 0 ]; then
    echo "$INTEROP_NAME: FAILED"
    exit 1
fi
echo "$INTEROP_NAME: all cells passed"
