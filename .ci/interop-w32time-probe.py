#!/usr/bin/env python3
"""Sends NTP requests shaped like Windows' W32Time to ADDRESS[:PORT] and
checks the answers; used by .ci/interop-matrix.sh (no Windows here).

W32Time without its client flag (0x8) sends symmetric-active (mode 1)
packets, NTPv3, with every header field filled: leap indicator 3 at start,
its own non-zero stratum, poll, precision, root delay and dispersion, a
reference id, and reference, origin and receive timestamps. The same
fields as crates/ntp-server/tests/symmetric.rs, with real times.

Checks: the mode-1 request gets a mode-2 answer and the mode-3 one (client
flag set) a mode-4 answer, both NTPv3, synchronized (leap indicator not 3,
stratum 1 to 15), origin timestamp = our transmit timestamp. Prints one
JSON line with the offset and delay of the mode-1 exchange with the least
delay of four; exit 1 when a check fails.
"""

import json
import socket
import struct
import sys
import time

NTP_EPOCH_OFFSET = 2208988800


def ntp_now():
    t = time.time() + NTP_EPOCH_OFFSET
    return int(t * 2**32)


def request(mode, xmt):
    first = 3 << 6 | 3 << 3 | mode  # LI 3, VN 3
    return struct.pack(
        "!BBbbII4sQQQQ",
        first,
        2,  # stratum
        10,  # poll
        -23,  # precision
        0x0000080A,  # root delay
        0x0007C000,  # root dispersion
        bytes([192, 0, 2, 10]),  # reference id
        xmt - (600 << 32),  # reference timestamp
        xmt - (64 << 32),  # origin timestamp
        xmt - (63 << 32),  # receive timestamp
        xmt,  # transmit timestamp
    )


def exchange(sock, addr, mode):
    t1 = ntp_now()
    sock.sendto(request(mode, t1), addr)
    data, _ = sock.recvfrom(1024)
    t4 = ntp_now()
    if len(data) < 48:
        raise AssertionError(f"mode {mode}: answer of {len(data)} octets")
    first, stratum, _poll, _prec, _rd, _rdisp, _refid, _ref, org, rec, xmt = struct.unpack(
        "!BBbbII4sQQQQ", data[:48]
    )
    leap, version, answer_mode = first >> 6, first >> 3 & 7, first & 7
    expected = {1: 2, 3: 4}[mode]
    if answer_mode != expected:
        raise AssertionError(f"mode {mode} answered in mode {answer_mode}, expected {expected}")
    if version != 3:
        raise AssertionError(f"mode {mode} answered in version {version}, expected 3")
    if org != t1:
        raise AssertionError(f"mode {mode}: origin {org:#x} is not our transmit {t1:#x}")
    if leap == 3 or not 1 <= stratum <= 15:
        raise AssertionError(f"mode {mode}: unsynchronized answer (leap {leap}, stratum {stratum})")
    # In integer NTP units first: floats of whole timestamps lose the
    # sub-microsecond part.
    offset = ((rec - t1) + (xmt - t4)) / 2 / 2**32
    delay = ((t4 - t1) - (xmt - rec)) / 2**32
    return {"mode": answer_mode, "version": version, "leap": leap, "stratum": stratum,
            "offset": offset, "delay": delay}


def main():
    if len(sys.argv) != 2:
        print("usage: interop-w32time-probe.py ADDRESS[:PORT]", file=sys.stderr)
        return 2
    host, _, port = sys.argv[1].partition(":")
    addr = (host, int(port or 123))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        try:
            # The offset of the exchange with the least delay of four.
            symmetric = min((exchange(sock, addr, 1) for _ in range(4)),
                            key=lambda e: e["delay"])
            client = exchange(sock, addr, 3)
        except (AssertionError, OSError) as e:
            print(f"w32time-probe: {e}", file=sys.stderr)
            return 1
    print(json.dumps({"symmetric": symmetric, "client": client,
                      "offset": symmetric["offset"], "stratum": symmetric["stratum"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
