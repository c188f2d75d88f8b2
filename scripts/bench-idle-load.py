"""Node memory under idle load (issue 13): GROUPS consumer groups, each with one member
connected and idle, and PRODUCERS WebSocket producers that send frames and never read their
acknowledgements. Prints the node's RSS every INTERVAL seconds for DURATION seconds.

    python3 scripts/bench-idle-load.py URL NODE_PID [GROUPS PRODUCERS DURATION INTERVAL]

Loopback only; every connection is closed at the end. Needs the `websockets` package
(scripts/bench-idle-groups.sh installs it into target/tools).
"""
import asyncio
import json
import sys
import time

import websockets

EVENT = json.dumps({
    "specversion": "1.0", "id": "", "source": "/bench/idle", "type": "bench.idle",
    "datacontenttype": "application/json", "data": {"pad": "x" * 190},
})


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def idle_member(base, i, stop):
    url = f"{base}/v1/channels/idle/consume?group=g{i}&from=latest"
    async with websockets.connect(url, subprotocols=["cloudevents.json"], max_queue=None) as ws:
        await stop.wait()
        await ws.close()


async def flooding_producer(base, i, stop, sent):
    url = f"{base}/v1/channels/flood/produce"
    async with websockets.connect(url, subprotocols=["cloudevents.json"], max_queue=1) as ws:
        n = 0
        while not stop.is_set():
            n += 1
            frame = EVENT.replace('"id": ""', f'"id": "{i}-{n}"')
            try:
                await asyncio.wait_for(ws.send(frame), timeout=1)
                sent[0] += 1
            except asyncio.TimeoutError:
                pass  # the node stopped reading us: that is the point
        ws.transport.abort()


async def main():
    base, pid = sys.argv[1].replace("http://", "ws://"), int(sys.argv[2])
    defaults = [1000, 100, 60, 10]
    given = [int(a) for a in sys.argv[3:7]]
    groups, producers, duration, interval = given + defaults[len(given):]
    stop = asyncio.Event()
    sent = [0]
    tasks = []
    for i in range(groups):
        tasks.append(asyncio.create_task(idle_member(base, i, stop)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    await asyncio.sleep(2)
    failed = [t for t in tasks if t.done()]
    if failed:
        sys.exit(f"{len(failed)} of {groups} group members could not connect: {failed[0].exception()!r}")
    print(f"{groups} idle group members connected; node RSS {rss_kb(pid)} kB", flush=True)
    for i in range(producers):
        tasks.append(asyncio.create_task(flooding_producer(base, i, stop, sent)))
    started = time.monotonic()
    while time.monotonic() - started < duration:
        await asyncio.sleep(interval)
        gone = [t for t in tasks if t.done()]
        if gone:
            sys.exit(f"{len(gone)} connections ended early: {gone[0].exception()!r}")
        print(f"t={time.monotonic() - started:5.1f} s  frames sent {sent[0]:>9}  node RSS {rss_kb(pid)} kB", flush=True)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


asyncio.run(main())
