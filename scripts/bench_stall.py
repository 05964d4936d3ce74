#!/usr/bin/env python3
"""Helper of scripts/bench-stall.sh.

sample OUT SECONDS NAME=PID/TID...
    Every SAMPLE_S, until SECONDS passed, appends one line to OUT:
    "<realtime ns> <steal ticks> NAME run_ns wait_ns ..." from
    /proc/<tid>/schedstat (run = ns on CPU, wait = ns runnable on a run
    queue but not running) and the machine's steal time (/proc/stat).
    A thread that has ended is left out of later lines.

analyse RECV_JSON SAMPLES GAP_MS RATE
    For every gap of the stream (udpgap recv --gap-ms), the samples around
    it: how long each sampled thread ran and waited on a run queue over the
    gap (plus one sample period either side), and the steal time. Prints one
    line per gap and a summary line "SUMMARY gaps=N skipped=N ...".
"""
import json
import os
import sys
import time

# 5 ms: a fraction of the 20 ms gaps looked for, cheap enough (a few reads).
SAMPLE_S = 0.005
# A gap "lost frames" when more sequence numbers are missing across it than
# this fraction of what the rate would have sent in it.
LOST_FRACTION = 0.5


def read_schedstat(tid):
    try:
        with open(f"/proc/{tid}/schedstat") as f:
            run, wait, _ = f.read().split()
            return int(run), int(wait)
    except (OSError, ValueError):
        return None


def read_steal():
    with open("/proc/stat") as f:
        fields = f.readline().split()
    # cpu user nice system idle iowait irq softirq steal ...
    return int(fields[8]) if len(fields) > 8 else 0


def sample(out, seconds, specs):
    threads = []
    for s in specs:
        name, _, tid = s.partition("=")
        threads.append((name, tid))
    end = time.monotonic() + float(seconds)
    with open(out, "w") as f:
        while time.monotonic() < end:
            parts = [str(time.time_ns()), str(read_steal())]
            for name, tid in threads:
                st = read_schedstat(tid)
                if st is not None:
                    parts += [name, str(st[0]), str(st[1])]
            f.write(" ".join(parts) + "\n")
            time.sleep(SAMPLE_S)


def load_samples(path):
    rows = []
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) < 2:
                continue
            t, steal = int(w[0]), int(w[1])
            th = {}
            for i in range(2, len(w) - 2, 3):
                th[w[i]] = (int(w[i + 1]), int(w[i + 2]))
            rows.append((t, steal, th))
    return rows


def window(rows, start, end):
    """The last sample at or before start and the first at or after end."""
    before = [r for r in rows if r[0] <= start]
    after = [r for r in rows if r[0] >= end]
    if not before or not after:
        return None
    return before[-1], after[0]


def analyse(recv_json, samples, gap_ms, rate):
    with open(recv_json) as f:
        text = f.read().strip()
    rec = json.loads(text.splitlines()[-1]) if text else {}
    gaps = rec.get("gaps", [])
    rows = load_samples(samples) if os.path.exists(samples) else []
    hz = os.sysconf("SC_CLK_TCK")
    n_lost = n_paused = 0
    names = sorted({n for r in rows for n in r[2]})
    worst_wait = {n: 0.0 for n in names}
    first = rec.get("first_ns", 0)
    for at, ms, skipped in gaps:
        end = at + int(ms * 1e6)
        expect = rate * ms / 1000.0
        lost = skipped > LOST_FRACTION * expect
        n_lost += lost
        n_paused += not lost
        desc = [f"gap at {((at - first) / 1e9):7.3f} s: {ms:7.1f} ms, "
                f"{skipped} seq skipped ({'frames lost' if lost else 'stream paused'})"]
        w = window(rows, at, end)
        if w is None:
            desc.append("no samples around it")
        else:
            (t0, s0, th0), (t1, s1, th1) = w
            desc.append(f"window {(t1 - t0) / 1e6:.1f} ms, steal {(s1 - s0) * 1000 / hz:.0f} ms")
            for n in names:
                if n in th0 and n in th1:
                    run = (th1[n][0] - th0[n][0]) / 1e6
                    wait = (th1[n][1] - th0[n][1]) / 1e6
                    worst_wait[n] = max(worst_wait[n], wait)
                    desc.append(f"{n} ran {run:.1f} ms, waited {wait:.1f} ms")
        print("  " + "; ".join(desc))
    total_wait = {}
    if len(rows) >= 2:
        for n in names:
            ts = [r for r in rows if n in r[2]]
            if len(ts) >= 2:
                total_wait[n] = (ts[-1][2][n][1] - ts[0][2][n][1]) / 1e6
    summary = [f"gaps={len(gaps)}", f"lost={n_lost}", f"paused={n_paused}",
               f"max_gap_ms={rec.get('max_gap_ms', 'n/a')}", f"stream_lost={rec.get('lost', 'n/a')}",
               f"received={rec.get('received', 'n/a')}"]
    for n in names:
        summary.append(f"{n}_worst_wait_in_gap_ms={worst_wait[n]:.1f}")
        if n in total_wait:
            summary.append(f"{n}_wait_total_ms={total_wait[n]:.1f}")
    print("SUMMARY " + " ".join(summary))


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "sample":
        sample(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 6 and sys.argv[1] == "analyse":
        analyse(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
