#!/usr/bin/env python3
"""Helpers of scripts/bench-failover.sh (lab namespaces only).

  bench_failover.py echo-server ADDR PORT
  bench_failover.py tcp-cycles ROUTER PORT CONNS CYCLES LAB_SH LAB_PREFIX
  bench_failover.py summary RESULTS_TSV RATE
  bench_failover.py neigh-trial LAB_SH LAB_PREFIX ADDR
  bench_failover.py neigh-summary RESULTS_JSONL
  bench_failover.py plot-bins PLOT_DIR

echo-server  echoes every byte on every connection (runs in the router),
             until killed.
tcp-cycles   (d): opens CONNS connections to the echo server, finds the
             member carrying them (rx_packets of the switch-side ports over
             20 warm-up exchanges), then CYCLES times cuts that member's
             carrier with LAB_SH, echoes one message on every connection,
             restores it and echoes again; prints one JSON line: how many
             connections still work, the slowest round, and which failed when.
summary      the Markdown table of docs/BENCHMARKS.md from the TSV rows
             bench-failover.sh records (RATE: packets/s of the stream).
neigh-trial  one carrier cut of the member bound to the data address ADDR
             (IPv4 or IPv6), run from the root namespace: the router pings
             ADDR every 2 ms while LAB_SH cuts the member its neighbour entry
             names; restores the member; prints one JSON line: the member,
             where the address went, the time from the member's carrier loss
             to the router's entry naming another member (`ip -ts monitor`
             in each namespace stamps each netlink event as it arrives, one
             clock), and the pings
             sent, answered, lost, duplicated and the longest gap between
             two answers.
neigh-summary  the Markdown table of those JSON lines, one row per family.
plot-bins    the TSV of scripts/failover-plot.sh from what `bench-failover.sh
             1 plot` left in PLOT_DIR (events.tsv, STREAM.arrivals): packets
             received per 10 ms bin from 300 ms before each stream's event to
             700 ms after, one column per stream, and a comment line per
             stream with its longest gap in that window and its losses. The
             event is the switch port's change as `ip -ts monitor` stamped
             it (STREAM.swa/swb.monitor), else the `date` stamp before
             `lab.sh cut` (events.tsv).
"""
import csv
import datetime
import json
import re
import os
import selectors
import socket
import socketserver
import statistics
import subprocess
import sys
import time
from collections import Counter, OrderedDict

MEMBERS = ["e1000g0", "e1000g1", "rge0"]
WARMUP_ROUNDS = 20
# Pauses after a cut and after a restore before the next exchange.
CUT_SETTLE = 0.3
RESTORE_SETTLE = 0.5
EXCHANGE_DEADLINE = 4.0
CONNECT_TIMEOUT = 5
LAB_TIMEOUT = 20
IP_TIMEOUT = 10
RECV_MAX = 4096
LISTEN_BACKLOG = 256
# neigh-trial: ping interval (s) and length (s) from the router, the cut
# this far into it; the pause after the restore lets the member rejoin (and
# an address move back) before the next trial.
PING_INTERVAL = 0.002
PING_SECONDS = 3
CUT_AT = 1.0
WARM_PINGS = 3
REPAIR_SETTLE = 1.5
# plot-bins: the streams (file names and TSV columns, in order), the bin
# width and the window around the event, in ms.
PLOT_STREAMS = ["kernel", "carrier", "silent"]
PLOT_BIN_MS = 10
PLOT_BEFORE_MS = 300
PLOT_AFTER_MS = 700
NS_PER_MS = 1_000_000
# "At the event": the longest gap starting from a little before t = 0 (the
# date stamp before the cut; a little before it: the two clocks' noise)
# until well past FDT 100 ms.
PLOT_EVENT_FROM_MS = -50
PLOT_EVENT_TO_MS = 250
# The longest gap counts as "at the event" when it starts this close to it
# (sender and receiver clocks both start with the stream, a few ms apart).
AT_EVENT_WINDOW = 0.25


def echo_server(addr, port):
    class Echo(socketserver.BaseRequestHandler):
        def handle(self):
            while True:
                data = self.request.recv(RECV_MAX)
                if not data:
                    return
                self.request.sendall(data)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = LISTEN_BACKLOG

    Server((addr, int(port)), Echo).serve_forever()


def tcp_cycles(router, port, n, cycles, lab, prefix):
    port, n, cycles = int(port), int(n), int(cycles)
    env = dict(os.environ, LAB_PREFIX=prefix)
    ports = [(prefix + "-swa", "sw-e1000g0"), (prefix + "-swa", "sw-e1000g1"), (prefix + "-swb", "sw-rge0")]

    def lab_cmd(*args):
        subprocess.run([lab, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=LAB_TIMEOUT, check=True)

    def counters():
        out = []
        for ns, dev in ports:
            r = subprocess.run(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/statistics/rx_packets"],
                               capture_output=True, text=True, timeout=IP_TIMEOUT)
            out.append(int(r.stdout.strip() or 0))
        return out

    conns = []
    for _ in range(n):
        try:
            s = socket.create_connection((router, port), timeout=CONNECT_TIMEOUT)
        except OSError:
            continue
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        conns.append(s)
    alive = set(range(len(conns)))
    worst_ms = 0.0
    failed_at = {}

    def exchange(tag, deadline_s=EXCHANGE_DEADLINE):
        """One small message echoed on every live connection; the dead are dropped."""
        nonlocal worst_ms
        sel = selectors.DefaultSelector()
        want = {}
        t0 = time.monotonic()
        for i in sorted(alive):
            msg = f"{tag}:{i}\n".encode()
            try:
                conns[i].send(msg)
            except OSError:
                alive.discard(i)
                failed_at[i] = tag
                continue
            want[i] = [msg, b""]
            sel.register(conns[i], selectors.EVENT_READ, i)
        end = t0 + deadline_s
        while want and time.monotonic() < end:
            for key, _ in sel.select(timeout=max(0.0, end - time.monotonic())):
                i = key.data
                try:
                    data = conns[i].recv(RECV_MAX)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                w = want[i]
                w[1] += data
                if not data or len(w[1]) >= len(w[0]):
                    if w[1] != w[0]:
                        alive.discard(i)
                        failed_at[i] = tag
                    sel.unregister(conns[i])
                    del want[i]
        for i in want:
            alive.discard(i)
            failed_at[i] = tag + " (timeout)"
        sel.close()
        worst_ms = max(worst_ms, (time.monotonic() - t0) * 1000)

    c1 = counters()
    for k in range(WARMUP_ROUNDS):
        exchange(f"warm{k}")
    c2 = counters()
    delta = [b - a for a, b in zip(c1, c2)]
    member = MEMBERS[delta.index(max(delta))]
    for c in range(cycles):
        lab_cmd("cut", member)
        time.sleep(CUT_SETTLE)
        exchange(f"cut{c}")
        lab_cmd("restore", member)
        time.sleep(RESTORE_SETTLE)
        exchange(f"restored{c}")
    exchange("final")
    print(json.dumps({"opened": len(conns), "requested": n, "cycles": cycles, "member": member,
                      "warmup_frames": dict(zip(MEMBERS, delta)), "alive": len(alive),
                      "slowest_round_ms": round(worst_ms, 1),
                      "failed": {str(i): failed_at[i] for i in sorted(failed_at)}}))


def summary(results, rate):
    with open(results) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    by = OrderedDict()
    for r in rows:
        by.setdefault(r["scenario"], []).append(r)

    def num(v):
        try:
            return float(v)
        except ValueError:
            return None

    rate = float(rate)
    print("| scenario | trials ok | gap median (ms) | gap max (ms) | max gap at the event | lost median | lost max "
          "| lost/rate max (ms) | reordered | ipmp0 tx drops | flow moved | carrier before -> after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, rs in by.items():
        ok = [r for r in rs if num(r["gap_ms"]) is not None]
        gaps = [num(r["gap_ms"]) for r in ok]
        lost = [num(r["lost"]) for r in ok]
        reord = sum(num(r["reordered"]) or 0 for r in ok)
        drops = sum(num(r["tap_drops"]) or 0 for r in ok)
        moved = sum(1 for r in ok if r["before"] != r["after"])
        at_ev = sum(1 for r in ok if num(r["event_at_s"]) is not None
                    and abs(num(r["gap_at_s"]) - num(r["event_at_s"])) < AT_EVENT_WINDOW)
        at_ev_s = f"{at_ev}/{len(ok)}" if any(num(r["event_at_s"]) is not None for r in ok) else "-"
        paths = Counter(f'{r["before"]}->{r["after"]}' for r in ok)

        def med(xs, f):
            return f % statistics.median(xs) if xs else "-"

        def mx(xs, f):
            return f % max(xs) if xs else "-"

        print(f"| {name} | {len(ok)}/{len(rs)} | {med(gaps, '%.1f')} | {mx(gaps, '%.1f')} | {at_ev_s} "
              f"| {med(lost, '%.0f')} | {mx(lost, '%.0f')} | {mx([x / rate * 1000 for x in lost], '%.1f')} "
              f"| {reord:.0f} | {drops:.0f} | {moved}/{len(ok)} | "
              + ", ".join(f"{k} ×{v}" for k, v in paths.most_common()) + " |")


def monitor_stamp(line):
    """The wall-clock time of an `ip -ts monitor` line: "[2026-11-29T23:40:00.123456] ..."."""
    if not line.startswith("["):
        return None
    try:
        return datetime.datetime.fromisoformat(line[1:line.index("]")]).timestamp()
    except ValueError:
        return None


def neigh_trial(lab, prefix, addr):
    env = dict(os.environ, LAB_PREFIX=prefix)
    router, host = prefix + "-router", prefix + "-host"

    def lab_cmd(*args):
        subprocess.run([lab, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=LAB_TIMEOUT, check=True)

    def mac_of(member):
        r = subprocess.run(["ip", "netns", "exec", host, "cat", f"/sys/class/net/{member}/address"],
                           capture_output=True, text=True, timeout=IP_TIMEOUT)
        return r.stdout.strip()

    def neigh():
        r = subprocess.run(["ip", "-n", router, "-j", "neigh", "show", "to", addr],
                           capture_output=True, text=True, timeout=IP_TIMEOUT)
        try:
            entries = json.loads(r.stdout or "[]")
        except ValueError:
            return None
        for e in entries:
            if e.get("lladdr") and not set(e.get("state", [])) & {"FAILED", "INCOMPLETE"}:
                return e["lladdr"]
        return None

    def monitor(ns, what):
        return subprocess.Popen(["ip", "-n", ns, "-ts", "monitor", what], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)

    macs = {m: mac_of(m) for m in MEMBERS}
    subprocess.run(["ip", "netns", "exec", router, "ping", "-n", "-q", "-c", str(WARM_PINGS), "-i", "0.2",
                    "-W", "1", addr], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=IP_TIMEOUT)
    old = neigh()
    member = next((m for m, mac in macs.items() if mac == old), None)
    out = {"addr": addr, "family": 6 if ":" in addr else 4, "member": member}
    if member is None:
        out["error"] = f"the router's entry {old} names no member"
        print(json.dumps(out))
        return
    # The member's carrier loss in the host and the neighbour entry's change
    # in the router, each stamped by `ip monitor` as its event arrives.
    links, neighs = monitor(host, "link"), monitor(router, "neigh")
    ping = subprocess.Popen(["ip", "netns", "exec", router, "ping", "-n", "-D", "-i", str(PING_INTERVAL),
                             "-W", "1", "-w", str(PING_SECONDS), addr],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(CUT_AT)
    lab_cmd("cut", member)
    text, _ = ping.communicate(timeout=PING_SECONDS + IP_TIMEOUT)
    links.terminate()
    neighs.terminate()
    link_text, _ = links.communicate(timeout=IP_TIMEOUT)
    neigh_text, _ = neighs.communicate(timeout=IP_TIMEOUT)
    # "[ts] 3: e1000g0@if2: <NO-CARRIER,BROADCAST,...> ..."
    t_cut = next((monitor_stamp(l) for l in link_text.splitlines()
                  if f" {member}@" in l and "NO-CARRIER" in l), None)
    # "[ts] 2001:db8::200 dev r0 lladdr aa:bb:cc:dd:ee:ff STALE"
    moved_to, t_move = None, None
    for line in neigh_text.splitlines():
        w = line.split()
        if len(w) > 1 and w[1] == addr and "lladdr" in w:
            m = next((m for m, mac in macs.items() if mac == w[w.index("lladdr") + 1] and m != member), None)
            if m is not None:
                moved_to, t_move = m, monitor_stamp(line)
                break
    # "[1700000000.123456] 64 bytes from A: icmp_seq=5 ttl=64 time=0.1 ms"
    stamps, seqs, dups = [], set(), 0
    sent = received = 0
    for line in text.splitlines():
        if line.startswith("[") and "icmp_seq=" in line:
            stamps.append(float(line[1:line.index("]")]))
            seq = line.split("icmp_seq=")[1].split()[0]
            if seq in seqs or "DUP!" in line:
                dups += 1
            seqs.add(seq)
        elif "packets transmitted" in line:
            fields = line.split(",")
            sent = int(fields[0].split()[0])
            received = int(fields[1].split()[0])
    stamps.sort()
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    # The same stream's noise floor: its longest gap in the second before
    # the cut.
    before = [b - a for a, b in zip(stamps, stamps[1:]) if t_cut is not None and b < t_cut]
    lab_cmd("restore", member)
    time.sleep(REPAIR_SETTLE)
    move_ms = None if t_cut is None or t_move is None else round((t_move - t_cut) * 1000, 1)
    out.update({"moved_to": moved_to, "neigh_move_ms": move_ms, "ping_interval_ms": PING_INTERVAL * 1000,
                "sent": sent, "received": received, "lost": sent - received, "duplicates": dups,
                "max_gap_ms": round(max(gaps) * 1000, 1) if gaps else None,
                "max_gap_before_cut_ms": round(max(before) * 1000, 1) if before else None})
    print(json.dumps(out))


def neigh_summary(results):
    rows = []
    with open(results) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    print("| family | trials ok | ping gap median (ms) | ping gap max (ms) | gap before the cut, max (ms) "
          "| lost median | lost max | lost x interval max (ms) | duplicates "
          "| neighbour entry moved after, median (ms) | max (ms) | member before -> after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for fam in (4, 6):
        rs = [r for r in rows if r.get("family") == fam]
        if not rs:
            continue
        ok = [r for r in rs if r.get("max_gap_ms") is not None and r.get("neigh_move_ms") is not None]
        gaps = [r["max_gap_ms"] for r in ok]
        noise = [r["max_gap_before_cut_ms"] for r in ok if r.get("max_gap_before_cut_ms") is not None]
        lost = [r["lost"] for r in ok]
        moves = [r["neigh_move_ms"] for r in ok]
        dups = sum(r.get("duplicates", 0) for r in ok)
        interval = ok[0]["ping_interval_ms"] if ok else 0
        paths = Counter(f'{r["member"]}->{r["moved_to"]}' for r in ok)

        def med(xs, f):
            return f % statistics.median(xs) if xs else "-"

        def mx(xs, f):
            return f % max(xs) if xs else "-"

        print(f"| IPv{fam} | {len(ok)}/{len(rs)} | {med(gaps, '%.1f')} | {mx(gaps, '%.1f')} | {mx(noise, '%.1f')} "
              f"| {med(lost, '%.0f')} "
              f"| {mx(lost, '%.0f')} | {mx([x * interval for x in lost], '%.1f')} | {dups} "
              f"| {med(moves, '%.1f')} | {mx(moves, '%.1f')} | "
              + ", ".join(f"{k} ×{v}" for k, v in paths.most_common()) + " |")


def read_arrivals(path):
    """`udpgap recv --arrivals` output: (first_ns, [(seq, ns since first)])."""
    first, rows = None, []
    with open(path) as f:
        for line in f:
            if line.startswith("# first_ns "):
                first = int(line.split()[2])
                continue
            w = line.split()
            if len(w) == 2:
                rows.append((int(w[0]), int(w[1])))
    if first is None:
        raise SystemExit(f"{path}: no '# first_ns' line")
    return first, rows


def port_change_ns(plot_dir, name, port, after_ns):
    """When `ip -ts -o monitor link` in a switch first saw PORT change at or
    after AFTER_NS (ns since the Unix epoch), or None."""
    pat = re.compile(r"\] \d+: " + re.escape(port) + r"[@:]")
    best = None
    for sw in ("swa", "swb"):
        try:
            with open(os.path.join(plot_dir, f"{name}.{sw}.monitor")) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            t = monitor_stamp(line)
            if t is None or not pat.search(line):
                continue
            ns = round(t * 1e6) * 1000
            if ns >= after_ns and (best is None or ns < best):
                best = ns
    return best


def plot_bins(plot_dir):
    with open(os.path.join(plot_dir, "events.tsv")) as f:
        events = {r["stream"]: r for r in csv.DictReader(f, delimiter="\t")}
    nbins = (PLOT_BEFORE_MS + PLOT_AFTER_MS) // PLOT_BIN_MS
    counts = {}
    bands = []
    for name in PLOT_STREAMS:
        ev = events.get(name)
        if ev is None:
            raise SystemExit(f"{plot_dir}/events.tsv: no stream {name}")
        first, rows = read_arrivals(os.path.join(plot_dir, name + ".arrivals"))
        # t = 0 is the `date +%s%N` stamp taken just before `lab.sh cut`:
        # the cut cannot be earlier. The switch's `ip -ts monitor` stamp is
        # taken in user space, late under load: the cut cannot be later.
        # The event is the band between the two.
        event_ns = int(ev["event_ns"])
        mark = "no event: the same point of the stream as the others' cut"
        if ev["port"] != "-":
            seen = port_change_ns(plot_dir, name, ev["port"], event_ns)
            if seen is None:
                mark = f"date stamp before lab.sh cut (no monitor line for {ev['port']}: no band)"
            else:
                band_to = (seen - event_ns) / NS_PER_MS
                bands.append((name, band_to))
                mark = (f"date stamp before lab.sh cut; {ev['port']} changed (ip -ts monitor) "
                        f"{band_to:.1f} ms later: the cut is in 0..{band_to:.1f} ms")
        # Arrival times in ms relative to the event (one clock: realtime).
        t = sorted((first + ns - event_ns) / NS_PER_MS for _, ns in rows)
        c = [0] * nbins
        for x in t:
            b = int((x + PLOT_BEFORE_MS) // PLOT_BIN_MS)
            if 0 <= b < nbins:
                c[b] += 1
        counts[name] = c
        win = [x for x in t if -PLOT_BEFORE_MS <= x < PLOT_AFTER_MS]
        gaps = [(b - a, a) for a, b in zip(win, win[1:])]
        gap, gap_at = max(gaps, default=(0.0, 0.0))
        ev_gap, ev_at = max((g for g in gaps if PLOT_EVENT_FROM_MS <= g[1] < PLOT_EVENT_TO_MS), default=(0.0, 0.0))
        seqs = {s for s, _ in rows}
        lost = (max(seqs) + 1 - len(seqs)) if seqs else 0
        # Sequence numbers missing among those received in the window.
        wseq = {s for s, ns in rows if -PLOT_BEFORE_MS <= (first + ns - event_ns) / NS_PER_MS < PLOT_AFTER_MS}
        wlost = (max(wseq) + 1 - min(wseq) - len(wseq)) if wseq else 0
        print(f"# stream {name}: {ev['before']} -> {ev['after']}, sport {ev['sport']}; received {len(seqs)}, "
              f"lost {lost} ({wlost} in the window); longest gap at the event "
              f"({PLOT_EVENT_FROM_MS:+d}..{PLOT_EVENT_TO_MS:+d} ms) {ev_gap:.1f} ms from {ev_at:+.1f} ms, "
              f"in the window {gap:.1f} ms from {gap_at:+.1f} ms; t = 0: {mark}")
    # The event's band of each stream with one, in ms from t = 0: from the
    # date stamp (0) to the monitor's stamp.
    for name, band_to in bands:
        print(f"# band {name}: 0.0 {band_to:.1f}")
    print("t_ms\t" + "\t".join(PLOT_STREAMS))
    for i in range(nbins):
        print(f"{i * PLOT_BIN_MS - PLOT_BEFORE_MS}\t" + "\t".join(str(counts[n][i]) for n in PLOT_STREAMS))


COMMANDS = {"echo-server": (echo_server, 2), "tcp-cycles": (tcp_cycles, 6), "summary": (summary, 2),
            "neigh-trial": (neigh_trial, 3), "neigh-summary": (neigh_summary, 1), "plot-bins": (plot_bins, 1)}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS or len(sys.argv) - 2 != COMMANDS[sys.argv[1]][1]:
        sys.exit(__doc__)
    fn, _ = COMMANDS[sys.argv[1]]
    fn(*sys.argv[2:])


if __name__ == "__main__":
    main()
