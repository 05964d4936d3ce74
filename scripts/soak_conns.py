#!/usr/bin/env python3
"""Long-lived TCP connections for scripts/soak.sh.

  soak_conns.py server --bind ADDR --port P --seconds S
  soak_conns.py client --connect ADDR --port P --count N --seconds S [--source ADDR]

The server echoes every byte on every connection and stops after S seconds.
The client opens N connections, then once a second sends one byte on each
and checks that the same bytes come back in order. A connection is lost when
it reports an error or end of file, echoes the wrong byte, or leaves a byte
unanswered for longer than STALL_LIMIT. After S seconds the client waits for
the last echoes and prints one JSON line: requested, opened, alive, lost,
rounds, the slowest echo in ms, and for each lost connection why and when.
Exit status 0 only when every requested connection is still alive.
Bounded: at most MAX_CONNS connections and MAX_SECONDS seconds.
"""

import argparse
import json
import selectors
import socket
import sys
import time

MAX_CONNS = 1000
MAX_SECONDS = 86400
# Bytes sent per connection per round, once a second.
ROUND_INTERVAL = 1.0
# An echo missing this long means the connection no longer works (TCP
# retransmissions after a failover take well under a second).
STALL_LIMIT = 20.0
CONNECT_TIMEOUT = 5.0
LISTEN_BACKLOG = 1024
RECV_MAX = 4096


def bounded(v, hi, what):
    if not 1 <= v <= hi:
        sys.exit(f"soak_conns: {what} must be 1..{hi}")
    return v


def server(args):
    sel = selectors.DefaultSelector()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.bind, args.port))
    lsock.listen(LISTEN_BACKLOG)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    end = time.monotonic() + args.seconds
    conns = 0
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=min(1.0, max(0.0, end - time.monotonic()))):
            if key.data is None:
                try:
                    c, _ = lsock.accept()
                except OSError:
                    continue
                if conns >= MAX_CONNS:
                    c.close()
                    continue
                conns += 1
                c.setblocking(False)
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sel.register(c, selectors.EVENT_READ, "conn")
                continue
            c = key.fileobj
            try:
                data = c.recv(RECV_MAX)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(c)
                c.close()
                conns -= 1
                continue
            try:
                # A few bytes at most: the socket buffer always has room.
                c.sendall(data)
            except OSError:
                sel.unregister(c)
                c.close()
                conns -= 1


class Conn:
    def __init__(self, sock, index):
        self.sock = sock
        self.index = index
        self.next_byte = 0  # value of the next byte to send
        self.expect = 0  # value of the next byte to come back
        self.pending = []  # send times of bytes not yet echoed


def client(args):
    t0 = time.monotonic()
    conns = []
    lost = {}

    def lose(c, why):
        lost[c.index] = {"why": why, "at_s": round(time.monotonic() - t0, 1)}
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    sel = selectors.DefaultSelector()
    for i in range(args.count):
        try:
            s = socket.create_connection(
                (args.connect, args.port),
                timeout=CONNECT_TIMEOUT,
                source_address=(args.source, 0) if args.source else None,
            )
        except OSError as e:
            lost[i] = {"why": f"connect: {e}", "at_s": round(time.monotonic() - t0, 1)}
            continue
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c = Conn(s, i)
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    print(f"soak_conns: {len(conns)} of {args.count} connections open", file=sys.stderr, flush=True)

    def alive():
        return [c for c in conns if c.index not in lost]

    slowest = 0.0
    rounds = 0
    start = time.monotonic()
    end = start + args.seconds
    next_round = start
    while True:
        now = time.monotonic()
        if now >= next_round and now < end:
            for c in alive():
                try:
                    c.sock.send(bytes([c.next_byte]))
                except BlockingIOError:
                    continue  # full send buffer: the stall check catches it
                except OSError as e:
                    lose(c, f"send: {e}")
                    continue
                c.next_byte = (c.next_byte + 1) % 256
                c.pending.append(now)
            rounds += 1
            next_round += ROUND_INTERVAL
        live = alive()
        if now >= end and not any(c.pending for c in live):
            break
        for c in live:
            if c.pending and now - c.pending[0] > STALL_LIMIT:
                lose(c, f"no echo for {STALL_LIMIT:.0f} s")
        if now >= end + STALL_LIMIT:
            break
        wait = max(0.0, min(next_round if now < end else end + STALL_LIMIT, now + 0.5) - now)
        for key, _ in sel.select(timeout=wait):
            c = key.data
            if c.index in lost:
                continue
            try:
                data = c.sock.recv(RECV_MAX)
            except BlockingIOError:
                continue
            except OSError as e:
                lose(c, f"recv: {e}")
                continue
            if not data:
                lose(c, "closed by the peer")
                continue
            t = time.monotonic()
            for b in data:
                if b != c.expect or not c.pending:
                    lose(c, f"echo {b}, expected {c.expect}")
                    break
                c.expect = (c.expect + 1) % 256
                slowest = max(slowest, t - c.pending.pop(0))
    result = {
        "requested": args.count,
        "opened": len(conns),
        "alive": len(alive()),
        "lost": len(lost),
        "rounds": rounds,
        "slowest_echo_ms": round(slowest * 1000, 1),
        "lost_connections": {str(i): lost[i] for i in sorted(lost)},
    }
    print(json.dumps(result), flush=True)
    for c in alive():
        c.sock.close()
    return 0 if not lost and len(conns) == args.count else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--seconds", type=int, required=True)
    c = sub.add_parser("client")
    c.add_argument("--connect", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--seconds", type=int, required=True)
    c.add_argument("--source")
    args = p.parse_args()
    bounded(args.seconds, MAX_SECONDS, "--seconds")
    if args.mode == "server":
        server(args)
        return 0
    bounded(args.count, MAX_CONNS, "--count")
    return client(args)


if __name__ == "__main__":
    sys.exit(main())
