"""The soak test's summary and verdict (scripts/soak.sh runs it): reads the samples CSV and the
load's totals, prints RSS after warm-up and at the end, the most descriptors and threads, what
was produced and consumed, the 5xx answers and the errors per kind, then a verdict; draws RSS,
descriptors and threads over time as a PNG when matplotlib imports. Exits 1 if a check fails.

    python3 scripts/soak_report.py SAMPLES.csv STATS.json PLOT.png

Checks: memory flat, no descriptor leak (end <= warm-up + 10), no 5xx but the provoked ones.
Warm-up: the first sample at or after min(600 s, 40% of the run), or SOAK_WARMUP_SECS: the
duplicate window (120 s by default), the log's block cache (64 MiB) and its memtables (flushed
when the journal reaches 128 MiB) fill before memory can level off. The node's RSS is then a
saw-tooth (memtables fill, are flushed, fill again), so one sample against another says little:
memory is flat when the second half of the samples after warm-up rises no higher, and falls
back no higher, than the first half (its peak and its trough each at most 10% + 16 MiB above
the first half's).
"""
import csv
import json
import os
import sys


def main(samples_path, stats_path, plot_path):
    with open(samples_path) as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    with open(stats_path) as f:
        stats = json.load(f)
    if len(rows) < 2:
        print("soak: fewer than two samples, nothing to judge")
        return 1
    secs = stats["secs"]
    warm_at = float(os.environ.get("SOAK_WARMUP_SECS", min(600.0, secs * 0.4)))
    warm = next((r for r in rows if r["time_s"] >= warm_at), rows[-1])
    end = rows[-1]
    start = rows[0]
    mib = 1024.0
    after = [r["rss_kib"] for r in rows if r["time_s"] >= warm["time_s"]]
    first, second = after[: len(after) // 2] or after, after[len(after) // 2:] or after
    peak_limit = max(first) * 1.10 + 16 * mib
    trough_limit = min(first) * 1.10 + 16 * mib
    memory_flat = max(second) <= peak_limit and min(second) <= trough_limit
    rss_limit = peak_limit
    fd_limit = warm["fds"] + 10
    counts = stats["counts"]

    print(f"soak: {secs:.0f} s, {len(rows)} samples")
    print(f"  RSS      start {start['rss_kib'] / mib:.1f} MiB, after warm-up ({warm['time_s']:.0f} s) "
          f"{warm['rss_kib'] / mib:.1f} MiB, end {end['rss_kib'] / mib:.1f} MiB "
          f"(max {max(r['rss_kib'] for r in rows) / mib:.1f} MiB)")
    print(f"           after warm-up, first half: peak {max(first) / mib:.1f}, trough "
          f"{min(first) / mib:.1f} MiB; second half: peak {max(second) / mib:.1f} (limit "
          f"{peak_limit / mib:.1f}), trough {min(second) / mib:.1f} (limit "
          f"{trough_limit / mib:.1f}) MiB")
    detail = stats.get("memory", [])  # one per CSV row, in order, then one after the load

    def split_rss(row):
        i = rows.index(row)
        d = detail[i] if i < len(detail) else None
        if not d or "RssAnon" not in d:
            return ""
        return f" (anon {d['RssAnon'] / mib:.1f}, file {d.get('RssFile', 0) / mib:.1f})"
    print(f"           after warm-up{split_rss(warm)}, end{split_rss(end)}")
    print(f"  fds      start {start['fds']:.0f}, after warm-up {warm['fds']:.0f}, end {end['fds']:.0f}, "
          f"max {max(r['fds'] for r in rows):.0f}; once the load closed "
          f"{stats['after_load']['fds']}")
    print(f"  threads  start {start['threads']:.0f}, max {max(r['threads'] for r in rows):.0f}, "
          f"end {end['threads']:.0f}")
    print(f"  produced {stats['produced']} (HTTP {counts.get('produced_http', 0)}, "
          f"WebSocket {counts.get('produced_ws', 0)}), consumed {stats['consumed']} "
          f"({counts.get('consume_connects', 0)} consumer connections, "
          f"{counts.get('consume_resumes', 0)} resumes, "
          f"{counts.get('stalled_connects', 0)} stalled)")
    print(f"  registry {counts.get('registry_ops', 0)} ops, KV {counts.get('kv_ops', 0)} ops, "
          f"proxied {counts.get('proxied', 0)}, provoked 5xx {stats['provoked_5xx']}")
    print(f"  5xx      {stats['errors_5xx']} (not counting the provoked ones)")
    errors = stats["errors"]
    if errors:
        print("  errors   " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items())))
    else:
        print("  errors   none")

    checks = [
        ("memory flat", memory_flat),
        ("no fd leak", end["fds"] <= fd_limit),
        ("no 5xx", stats["errors_5xx"] == 0),
    ]
    failed = [name for name, ok in checks if not ok]
    print("verdict: " + ", ".join(f"{name} {'ok' if ok else 'FAILED'}" for name, ok in checks)
          + (" -> PASS" if not failed else " -> FAIL"))

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("soak: matplotlib not available, no plot (the CSV is written)")
    else:
        t = [r["time_s"] for r in rows]
        fig, axes = plt.subplots(3, 1, sharex=True, figsize=(9, 7))
        for ax, key, label in ((axes[0], "rss_kib", "RSS (MiB)"), (axes[1], "fds", "open fds"),
                               (axes[2], "threads", "threads")):
            ys = [r[key] / mib if key == "rss_kib" else r[key] for r in rows]
            ax.plot(t, ys, marker=".")
            ax.set_ylabel(label)
            ax.axvline(warm["time_s"], color="grey", linestyle=":", linewidth=1)
            ax.grid(True, alpha=0.3)
            ax.set_ylim(bottom=0)
        axes[0].axhline(rss_limit / mib, color="red", linestyle="--", linewidth=1)
        axes[1].axhline(fd_limit, color="red", linestyle="--", linewidth=1)
        axes[2].set_xlabel("time (s)")
        fig.suptitle(f"dctl up soak: {secs:.0f} s, produced {stats['produced']}, "
                     f"consumed {stats['consumed']}")
        fig.tight_layout()
        fig.savefig(plot_path, dpi=100)
        print(f"soak: plot {plot_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
