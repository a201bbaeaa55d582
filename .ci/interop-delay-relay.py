#!/usr/bin/env python3
"""UDP relay for the OpenNTPD cell of .ci/interop-matrix.sh.

    interop-delay-relay.py LISTEN_ADDR:PORT SERVER_ADDR:PORT DELAY_MS

Forwards each datagram received on LISTEN to SERVER and the answer back to
the sender. The first exchange goes through at once; every later one is
held DELAY_MS before it goes out and DELAY_MS again before the answer goes
back, the same both ways, so offsets measured through the relay stay
unbiased and only the round-trip delay grows.

Why: OpenNTPD calls itself synchronized (and only then serves leap 0 and a
stratum) at its second clock update. Each update takes the reply with the
least delay among its last eight and discards it with all older ones, so
the second update needs as many new replies as the first update left
discarded: one if the oldest reply had the least delay, eight if the
newest had, at about 30 s apart. Making the first reply the fastest makes
that one, and OpenNTPD's time to serve about 110 s instead of 110-340 s.
"""

import socket
import sys
import time


def address(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def main():
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    listen, server, delay = address(sys.argv[1]), address(sys.argv[2]), float(sys.argv[3]) / 1e3
    inbound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inbound.bind(listen)
    outbound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    outbound.settimeout(2)
    print(f"relaying {sys.argv[1]} to {sys.argv[2]}", flush=True)
    exchanges = 0
    while True:
        request, client = inbound.recvfrom(2048)
        hold = delay if exchanges > 0 else 0.0
        exchanges += 1
        time.sleep(hold)
        outbound.sendto(request, server)
        try:
            answer, _ = outbound.recvfrom(2048)
        except socket.timeout:
            continue
        time.sleep(hold)
        inbound.sendto(answer, client)


if __name__ == "__main__":
    sys.exit(main())
