#!/usr/bin/env python3
"""The disk's own floor for durable produce latency: append N small records to a file in DIR,
each followed by fsync (or fdatasync), paced at RATE per second, and print the latency
quantiles. Draft in `sync` durability cannot acknowledge faster than this.

    scripts/fsync-latency.py [DIR] [N] [RATE]      (defaults: . 5000 1000)
"""
import os
import sys
import time

folder = sys.argv[1] if len(sys.argv) > 1 else "."
count = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
rate = float(sys.argv[3]) if len(sys.argv) > 3 else 1000.0
path = os.path.join(folder, f"fsync-latency-{os.getpid()}.bin")
try:
    for name, sync in (("fdatasync", os.fdatasync), ("fsync", os.fsync)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        lat = []
        for _ in range(count):
            start = time.perf_counter()
            os.write(fd, b"x" * 400)
            sync(fd)
            lat.append(time.perf_counter() - start)
            time.sleep(max(0.0, 1.0 / rate - lat[-1]))
        os.close(fd)
        lat.sort()
        q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3
        print(f"{name}: p50 {q(0.5):.3f} ms, p99 {q(0.99):.3f} ms, p99.9 {q(0.999):.3f} ms, max {lat[-1] * 1e3:.3f} ms ({count} at {rate:.0f}/s)")
finally:
    if os.path.exists(path):
        os.remove(path)
