#!/usr/bin/python3
"""bench/REPORT.md and its plots from the raw figures of one herd-bench run.

    bench/report.py DATA_DIR OUT_DIR

DATA_DIR holds what `herd-bench --data DATA_DIR` wrote (one CSV per figure, and table.txt, the
table herd-bench printed); OUT_DIR receives REPORT.md and report-*.png. Every figure stands
beside the raw fork + pipe round trip of the same run (floors.csv), as in herd-bench's table.
Debian's python3-matplotlib draws the plots (Agg: no display needed).
"""
import csv
import os
import platform
import statistics
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows(data, name):
    path = os.path.join(data, name)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    kernel = platform.release()
    cores = os.cpu_count()
    distro = "?"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{distro}, Linux {kernel}, {cores} cores ({cpu})"


def save(fig, out, name):
    path = os.path.join(out, name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return name


def histogram(values, title, xlabel, floor, out, name):
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.hist(values, bins=40, color="#4477aa")
    for p, style in ((50, "-"), (99, "--")):
        ax.axvline(pct(values, p), color="black", linestyle=style, linewidth=1, label=f"p{p} {pct(values, p):.2f} ms")
    if floor:
        ax.axvline(floor, color="#cc3311", linewidth=1, label=f"raw fork + pipe p50 {floor:.3f} ms")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.legend()
    return save(fig, out, name)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    data, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    floors = {}
    for r in rows(data, "floors.csv"):   # the first run's: the table's
        floors.setdefault(r["name"], float(r["p50_ms"]))
    raw = floors.get("fork_pipe", 0.0)
    md = ["# herd-bench report", ""]
    md += [f"One run of `bench/report` on {machine()}. Every figure stands beside the raw fork + pipe round trip "
           f"of the same run: **{raw:.3f} ms** (p50); machines differ by 5x in fork cost, so compare ratios. "
           "The numbers come from `herd-bench --data DIR` (CSV files of every sample); the table is the one "
           "herd-bench printed.", ""]
    try:
        rev = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "describe", "--always",
                              "--dirty"], capture_output=True, text=True).stdout.strip()
        if rev:
            md += [f"Source: `{rev}`.", ""]
    except OSError:
        pass

    table = os.path.join(data, "table.txt")
    if os.path.exists(table):
        with open(table) as f:
            md += ["## herd-bench's table", "", "```", f.read().rstrip(), "```", ""]

    respawn = [float(r["ms"]) for r in rows(data, "respawn.csv")]
    if respawn:
        name = histogram(respawn, "Respawn after kill -9 (8 workers)", "kill -9 to the replacement's ready line (ms)",
                         raw, out, "report-respawn.png")
        md += ["## Respawn latency", "",
               f"{len(respawn)} kills: p50 {pct(respawn, 50):.2f} ms ({pct(respawn, 50) / raw:.1f}x raw), "
               f"p99 {pct(respawn, 99):.2f} ms. A respawn is served by the pre-forked standby: its floor is a reap "
               f"and a pipe round trip ({floors.get('reap_pipe', float('nan')):.3f} ms in this run).", "",
               f"![respawn]({name})", ""]

    hang = rows(data, "hang.csv")
    if hang:
        log = [float(r["log_ms"]) for r in hang]
        wall = [float(r["wall_ms"]) for r in hang if r.get("wall_ms")]
        name = histogram(wall or log, "Hang detection: overshoot past --heartbeat-timeout",
                         "ms after the timeout", raw, out, "report-hang.png")
        md += ["## Hang detection", "",
               f"{len(log)} hangs, 200 ms timeout: overshoot p50 {pct(log, 50):.1f} ms, p99 {pct(log, 99):.1f} ms "
               f"(the manager's own log); by the wall clock p99 {pct(wall, 99):.1f} ms.", "",
               f"![hang]({name})", ""]

    ready = rows(data, "ready.csv")
    if ready:
        sizes = sorted({int(r["workers"]) for r in ready})
        med = [statistics.median(float(r["ms"]) for r in ready if int(r["workers"]) == n) for n in sizes]
        fig, ax = plt.subplots(figsize=(7, 3.8))
        ax.plot(sizes, med, marker="o", label="herd: spawn to all ready (median)")
        ax.plot(sizes, [n * raw for n in sizes], linestyle="--", color="#cc3311",
                label="N serial raw fork + pipe round trips")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("workers")
        ax.set_ylabel("ms")
        ax.set_title("Spawn to ready against pool size")
        ax.legend()
        name = save(fig, out, "report-ready.png")
        md += ["## Spawn to ready against pool size", "", "| workers | ms (median) | x N raw forks |", "|---|---|---|"]
        md += [f"| {n} | {m:.1f} | {m / (n * raw):.1f} |" for n, m in zip(sizes, med)]
        md += ["", f"![ready]({name})", ""]

    load = rows(data, "load.csv")
    if load:
        fig, ax = plt.subplots(figsize=(7, 3.8))
        intervals = sorted({int(r["interval_ms"]) for r in load})
        md += ["## Manager CPU against workers and heartbeat rate", "",
               "| workers | heartbeat interval | heartbeats/s | manager CPU (% of a core) | per heartbeat (us) |",
               "|---|---|---|---|---|"]
        for iv in intervals:
            by_workers = {}
            for r in load:
                if int(r["interval_ms"]) == iv:
                    by_workers.setdefault(int(r["workers"]), []).append(float(r["cpu_percent"]))
            pts = sorted((w, statistics.mean(c)) for w, c in by_workers.items())
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"heartbeat every {iv} ms")
            for w, c in pts:
                rate = w * 1000 / iv
                md.append(f"| {w} | {iv} ms | {rate:.0f} | {c:.2f} | {c * 1e4 / rate:.1f} |")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("workers")
        ax.set_ylabel("manager CPU, % of one core")
        ax.set_title("The manager's cost of heartbeats")
        ax.legend()
        name = save(fig, out, "report-cpu.png")
        md += ["", f"![cpu]({name})", ""]

    rollout = rows(data, "rollout.csv")
    if rollout:
        fig, axes = plt.subplots(2, 1, figsize=(7, 5.6), sharex=True)
        md += ["## Request latency through USR2 and HUP", ""]
        for ax, kind in zip(axes, ("USR2", "HUP")):
            pts = [(float(r["t_ms"]), float(r["latency_ms"]), r["ok"] == "1") for r in rollout if r["kind"] == kind]
            if not pts:
                continue
            good = [p for p in pts if p[2]]
            bad = [p for p in pts if not p[2]]
            ax.scatter([p[0] for p in good], [p[1] for p in good], s=2, label="answered 200")
            if bad:
                ax.scatter([p[0] for p in bad], [p[1] for p in bad], s=8, color="#cc3311", label="failed")
            ax.axvline(0, color="black", linewidth=1)
            ax.set_ylabel("latency (ms)")
            ax.set_yscale("log")
            ax.set_title(f"{kind} at t = 0 (every round overlaid)")
            ax.legend(loc="upper right")
            lat = [p[1] for p in pts]
            md.append(f"- {kind}: {len(pts)} requests around the signal, {len(bad)} failed; latency p50 "
                      f"{pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms, max {max(lat):.2f} ms.")
        axes[-1].set_xlabel("ms since the signal")
        name = save(fig, out, "report-rollout.png")
        md += ["", f"![rollout]({name})", ""]

    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write("\n".join(md).rstrip() + "\n")
    print(f"report: {os.path.join(out, 'REPORT.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
