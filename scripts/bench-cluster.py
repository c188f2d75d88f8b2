"""Load and measurements for scripts/bench-cluster.sh (loopback only, bounded in time).

  bench-cluster.py if-match SECONDS URL [URL...]  4 threads per node: read the hot key's
                                                 revision, put with If-Match; counts wins
                                                 (200/201) and lost races (412) per second
  bench-cluster.py writer URL ACKS STOP          puts keys one after another until the file
                                                 STOP exists; each acknowledgement's time
                                                 goes to ACKS (a failed put is retried)
  bench-cluster.py gaps ACKS STOPS               the longest wait between two acknowledged
                                                 writes within 5 s of each stop, by signal
"""

import http.client
import os
import statistics
import sys
import threading
import time


def connect(url):
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=30)


def if_match(seconds, urls):
    key = "/v1/kv/bench/hot"
    c = connect(urls[0])
    c.request("PUT", key, b"0")
    c.getresponse().read()
    counts = {"won": 0, "lost": 0, "other": 0}
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def run(url):
        c = connect(url)
        while time.monotonic() < end:
            c.request("GET", key)
            r = c.getresponse()
            r.read()
            etag = r.getheader("ETag")
            c.request("PUT", key, b"v", {"If-Match": etag})
            r = c.getresponse()
            r.read()
            outcome = "won" if r.status in (200, 201) else "lost" if r.status == 412 else "other"
            with lock:
                counts[outcome] += 1

    threads = [threading.Thread(target=run, args=(u,)) for u in urls for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(
        f"if-match on one key, {len(urls)} node(s), {len(threads)} clients: "
        f"{counts['won'] / seconds:,.0f} won/s, {counts['lost'] / seconds:,.0f} lost (412)/s, "
        f"{counts['other']} other"
    )


def writer(url, acks, stop):
    c = connect(url)
    n = 0
    with open(acks, "w") as out:
        while not os.path.exists(stop):
            try:
                c.request("PUT", f"/v1/kv/failover/k{n % 1000}", b"v")
                r = c.getresponse()
                r.read()
                if r.status in (200, 201):
                    out.write(f"{time.time()}\n")
                    n += 1
            except OSError:
                c = connect(url)


def gaps(acks, stops):
    times = [float(line) for line in open(acks)]
    by_signal = {}
    for line in open(stops):
        signal, at = line.split()
        at = float(at)
        window = [t for t in times if at - 1 <= t <= at + 5]
        gap = max((b - a for a, b in zip(window, window[1:])), default=float("nan"))
        by_signal.setdefault(signal, []).append(gap * 1000)
    writes = len(times)
    span = times[-1] - times[0] if times else 0
    print(f"writer: {writes} acknowledged puts in {span:.0f} s")
    for signal, values in by_signal.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(
            f"fail-over gap, {signal} of each server: {shown} ms "
            f"(p50 {statistics.median(values):.0f} ms, max {max(values):.0f} ms)"
        )


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "if-match":
        if_match(float(sys.argv[2]), sys.argv[3:])
    elif mode == "writer":
        writer(*sys.argv[2:5])
    elif mode == "gaps":
        gaps(*sys.argv[2:4])
    else:
        sys.exit(f"unknown mode {mode}")
