"""Load and measurements for scripts/bench-cluster.sh (loopback only, bounded in time).

  bench-cluster.py if-match SECONDS URL [URL...]  4 threads per node: read the hot key's
                                                 revision, put with If-Match; counts wins
                                                 (200/201) and lost races (412) per second
  bench-cluster.py writer URL ACKS STOP          puts keys one after another until the file
                                                 STOP exists; each acknowledgement's time
                                                 goes to ACKS (a failed put is retried)
  bench-cluster.py batches URL ACKS STOP         the same with batches of 100 events of
                                                 1 KiB (100 KiB, one atomic publish each)
                                                 to channel `failover`, ids kept on a retry
  bench-cluster.py gaps LABEL ACKS STOPS         the longest wait between two acknowledged
                                                 writes under way within 5 s of each stop,
                                                 by signal
"""

import http.client
import json
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


def acknowledged(url, acks, stop, request):
    """Sends request(n) -> (method, path, body, headers) one after another until the file
    STOP exists; writes each acknowledgement's time to ACKS. A failed write is sent again."""
    c = connect(url)
    n = 0
    with open(acks, "w") as out:
        while not os.path.exists(stop):
            try:
                c.request(*request(n))
                r = c.getresponse()
                r.read()
                if r.status in (200, 201):
                    out.write(f"{time.time()}\n")
                    n += 1
            except OSError:
                c = connect(url)


def writer(url, acks, stop):
    acknowledged(url, acks, stop, lambda n: ("PUT", f"/v1/kv/failover/k{n % 1000}", b"v", {}))


def batches(url, acks, stop):
    pad = "x" * 1000
    headers = {"content-type": "application/cloudevents-batch+json"}

    def request(n):
        batch = [
            {"specversion": "1.0", "id": f"b{n}-{i}", "source": "/bench/failover",
             "type": "bench.failover", "data": pad}
            for i in range(100)
        ]
        return ("POST", "/v1/channels/failover/events", json.dumps(batch).encode(), headers)

    acknowledged(url, acks, stop, request)


def gaps(label, acks, stops):
    times = [float(line) for line in open(acks)]
    by_signal = {}
    for line in open(stops):
        signal, at = line.split()
        at = float(at)
        # Every wait between two acknowledgements that is under way within 5 s of the stop,
        # however long it lasts.
        pairs = [(a, b) for a, b in zip(times, times[1:]) if b >= at and a <= at + 5]
        gap = max((b - a for a, b in pairs), default=float("nan"))
        by_signal.setdefault(signal, []).append(gap * 1000)
    writes = len(times)
    span = times[-1] - times[0] if times else 0
    print(f"{label}: {writes} acknowledged writes in {span:.0f} s")
    for signal, values in by_signal.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(
            f"{label}, fail-over gap, {signal} of each server: {shown} ms "
            f"(p50 {statistics.median(values):.0f} ms, max {max(values):.0f} ms)"
        )


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "if-match":
        if_match(float(sys.argv[2]), sys.argv[3:])
    elif mode == "writer":
        writer(*sys.argv[2:5])
    elif mode == "batches":
        batches(*sys.argv[2:5])
    elif mode == "gaps":
        gaps(*sys.argv[2:5])
    else:
        sys.exit(f"unknown mode {mode}")
