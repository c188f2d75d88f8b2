"""The soak test's load (scripts/soak.sh runs it): against one node, until the deadline, all at
once: single events produced over HTTP, events produced over pipelined WebSockets, WebSocket
consumers (reading, stalled on purpose, reconnecting from their last offset), registry churn,
KV puts and deletes over a bounded key set, and requests proxied by the ingress to an upstream.
Samples the node's RSS, descriptors and threads every INTERVAL seconds into a CSV and writes
the totals (errors per kind) as JSON at the end.

    python3 scripts/soak_load.py --api URL --ingress URL --upstream HOST:PORT --pid NODE_PID \
        --secs 600 --csv samples.csv --stats stats.json [--http-rate 200 --ws-rate 500 ...]

Standard library only (a minimal RFC 6455 client and HTTP/1.1 client below); loopback only;
every loop ends at the deadline and is bounded in count; every connection is closed at the end.
Rates and counts also come from SOAK_* environment variables (see the flags).
"""
import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import re
import socket
import sys
import time
from urllib.parse import urlsplit

CHANNEL = "soak"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OFFSET = re.compile(rb'"draftoffset":\s*(\d+)')
TIMEOUT = 10.0


class Stats:
    def __init__(self):
        self.counts = {}
        self.errors = {}
        self.errors_5xx = 0
        self.provoked_5xx = 0

    def add(self, name, n=1):
        self.counts[name] = self.counts.get(name, 0) + n

    def error(self, kind, why):
        key = f"{kind}:{why}"
        self.errors[key] = self.errors.get(key, 0) + 1

    def status(self, kind, code):
        if code >= 500:
            self.errors_5xx += 1
        self.error(kind, f"status_{code}")

    def produced(self):
        return self.counts.get("produced_http", 0) + self.counts.get("produced_ws", 0)

    def consumed(self):
        return self.counts.get("consumed", 0)


def why(e):
    if isinstance(e, asyncio.TimeoutError):
        return "timeout"
    return type(e).__name__


def host_port(url):
    u = urlsplit(url)
    if u.hostname != "127.0.0.1":
        raise SystemExit(f"soak_load.py: loopback only, not {url}")
    return u.hostname, u.port


# --- HTTP/1.1 with keep-alive: one connection per worker ------------------------------------

class Http:
    def __init__(self, url):
        self.host, self.port = host_port(url)
        self.reader = self.writer = None

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except Exception:
                pass
        self.reader = self.writer = None

    async def request(self, method, path, body=None, content_type="application/json"):
        try:
            return await asyncio.wait_for(self._request(method, path, body, content_type), TIMEOUT)
        except BaseException:
            await self.close()
            raise

    async def _request(self, method, path, body, content_type):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        await self.writer.drain()
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and "close" in value:
                close = True
        if chunked:
            data = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await self.reader.readuntil(b"\r\n") != b"\r\n":
                        pass
                    break
                data += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
        else:
            data = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, data


# --- WebSocket client (RFC 6455): masked client frames, server frames read -----------------

class Closed(Exception):
    pass


class WebSocket:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, url, path, protocol="cloudevents.json"):
        host, port = host_port(url)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
        try:
            key = base64.b64encode(os.urandom(16))
            writer.write(
                f"GET {path} HTTP/1.1\r\nhost: {host}:{port}\r\nupgrade: websocket\r\n"
                f"connection: Upgrade\r\nsec-websocket-key: {key.decode()}\r\n"
                f"sec-websocket-version: 13\r\nsec-websocket-protocol: {protocol}\r\n\r\n".encode())
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            if status != 101:
                raise Closed(f"status_{status}")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
            if headers.get("sec-websocket-accept") != accept:
                raise Closed("bad_accept")
            if headers.get("sec-websocket-protocol") != protocol:
                raise Closed("bad_subprotocol")
        except BaseException:
            writer.close()
            raise
        return cls(reader, writer)

    def send_frame(self, opcode, payload):
        n = len(payload)
        if n < 126:
            head = bytes([0x80 | opcode, 0x80 | n])
        elif n < 65536:
            head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        if n:
            masked = (int.from_bytes(payload, "big")
                      ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        else:
            masked = b""
        self.writer.write(head + mask + masked)

    async def send_text(self, text):
        self.send_frame(0x1, text if isinstance(text, bytes) else text.encode())
        await self.writer.drain()

    async def recv(self):
        """The next text or binary message; answers pings, raises Closed on a close frame."""
        message, first_opcode = b"", None
        while True:
            b0, b1 = await self.reader.readexactly(2)
            fin, opcode, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if b1 & 0x80:
                raise Closed("masked_server_frame")
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(n)
            if opcode == 0x9:
                self.send_frame(0xA, payload)
                await self.writer.drain()
            elif opcode == 0xA:
                pass
            elif opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                try:
                    self.send_frame(0x8, payload[:2])
                    await self.writer.drain()
                except Exception:
                    pass
                raise Closed(f"close_{code}")
            else:
                if opcode != 0x0:
                    first_opcode = opcode
                message += payload
                if fin:
                    return first_opcode, message

    async def close(self):
        try:
            self.send_frame(0x8, (1000).to_bytes(2, "big"))
            await asyncio.wait_for(self.writer.drain(), 2)
        except Exception:
            pass
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except Exception:
            pass


# --- the loops --------------------------------------------------------------------------------

def event(kind, i, pad):
    return json.dumps({
        "specversion": "1.0", "id": f"{kind}-{i}", "source": f"/soak/{kind}",
        "type": f"soak.{kind}", "datacontenttype": "application/json",
        "data": {"i": i, "pad": pad},
    }).encode()


async def paced(deadline, rate, limit):
    """Yields tick numbers at `rate` per second until the deadline or `limit` ticks; a late
    tick is not made up in a burst."""
    start = time.monotonic()
    period = 1.0 / rate
    i = 0
    while i < limit:
        now = time.monotonic()
        if now >= deadline:
            return
        due = start + i * period
        if due > now:
            await asyncio.sleep(min(due - now, deadline - now))
        elif now - due > 1.0:
            start = now - i * period
        yield i
        i += 1


async def http_producer(a, st, deadline, worker, rate):
    http = Http(a.api)
    pad = "x" * a.event_pad
    try:
        async for i in paced(deadline, rate, int(rate * a.secs) + 1):
            try:
                status, _ = await http.request(
                    "POST", f"/v1/channels/{CHANNEL}/events", event(f"http{worker}", i, pad),
                    "application/cloudevents+json")
                if status == 201:
                    st.add("produced_http")
                else:
                    st.status("http_produce", status)
            except Exception as e:
                st.error("http_produce", why(e))
                await asyncio.sleep(0.2)
    finally:
        await http.close()


async def ws_producer(a, st, deadline, worker, rate):
    pad = "x" * a.event_pad
    window = max(10, int(rate))  # at most a second of frames unacknowledged
    sent_total = 0
    limit = int(rate * a.secs) + 1
    while time.monotonic() < deadline and sent_total < limit:
        try:
            ws = await WebSocket.connect(a.api, f"/v1/channels/{CHANNEL}/produce")
        except Exception as e:
            st.error("ws_produce", f"connect_{why(e) if not isinstance(e, Closed) else e}")
            await asyncio.sleep(1)
            continue
        st.add("ws_produce_connects")
        inflight = asyncio.Semaphore(window)

        async def acks():
            while True:
                _, msg = await ws.recv()
                ack = json.loads(msg)
                if ack.get("offsets") is not None:
                    st.add("produced_ws", len(ack["offsets"]))
                else:
                    st.error("ws_produce", "refused")
                inflight.release()

        reader = asyncio.create_task(acks())
        try:
            async for i in paced(deadline, rate, limit - sent_total):
                try:
                    await asyncio.wait_for(inflight.acquire(), TIMEOUT)
                except asyncio.TimeoutError:
                    st.error("ws_produce", "ack_timeout")
                    break
                if reader.done():
                    break
                await asyncio.wait_for(ws.send_text(event(f"ws{worker}", sent_total, pad)), TIMEOUT)
                sent_total += 1
            if reader.done() and reader.exception() is not None:
                raise reader.exception()
        except Exception as e:
            st.error("ws_produce", why(e) if not isinstance(e, Closed) else str(e))
            await asyncio.sleep(0.5)
        finally:
            # Let the last acknowledgements arrive before closing.
            end = time.monotonic() + 2
            while inflight._value < window and time.monotonic() < end and not reader.done():
                await asyncio.sleep(0.05)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await ws.close()


async def consumer(a, st, deadline, worker, reconnect_every):
    """Reads from the live end (or, reconnecting, from one past its last offset), checking
    that offsets follow each other."""
    last = None
    connects = 0
    while time.monotonic() < deadline and connects < 10_000:
        connects += 1
        start = "latest" if last is None else str(last + 1)
        try:
            ws = await WebSocket.connect(a.api, f"/v1/channels/{CHANNEL}/consume?from={start}")
        except Exception as e:
            st.error("consume", f"connect_{e if isinstance(e, Closed) else why(e)}")
            await asyncio.sleep(1)
            continue
        st.add("consume_connects")
        until = deadline if reconnect_every is None else min(
            deadline, time.monotonic() + reconnect_every * random.uniform(0.7, 1.3))
        try:
            while True:
                left = until - time.monotonic()
                if left <= 0:
                    break
                try:
                    _, msg = await asyncio.wait_for(ws.recv(), left)
                except asyncio.TimeoutError:
                    break
                m = OFFSET.search(msg)
                if m is None:
                    st.error("consume", "no_offset")
                    continue
                offset = int(m.group(1))
                if last is not None and offset != last + 1:
                    st.error("consume", "gap" if offset > last + 1 else "repeat")
                last = offset
                st.add("consumed")
        except Exception as e:
            st.error("consume", str(e) if isinstance(e, Closed) else why(e))
            await asyncio.sleep(0.5)
        finally:
            await ws.close()
        if reconnect_every is not None:
            st.add("consume_resumes")


async def stalled_consumer(a, st, deadline, worker):
    """Connects from the start of the channel and never reads; lets go after STALL_HOLD
    seconds (the node may have closed it meanwhile) and stalls again."""
    rounds = 0
    while time.monotonic() < deadline and rounds < 10_000:
        rounds += 1
        try:
            ws = await WebSocket.connect(a.api, f"/v1/channels/{CHANNEL}/consume?from=earliest")
        except Exception as e:
            st.error("stalled", f"connect_{e if isinstance(e, Closed) else why(e)}")
            await asyncio.sleep(1)
            continue
        st.add("stalled_connects")
        await asyncio.sleep(max(0, min(a.stall_hold, deadline - time.monotonic())))
        ws.writer.transport.abort()


async def registry_churn(a, st, deadline, worker):
    """One instance id: register, heartbeat a few times, deregister, again."""
    http = Http(a.api)
    path = f"/v1/services/soak-churn/instances/c{worker}"
    body = json.dumps({"address": a.upstream,
                       "routes": [{"prefix": f"/churn/{worker}", "strip_prefix": True}],
                       "ttl_ms": 10_000}).encode()
    cycles = 0
    try:
        while time.monotonic() < deadline and cycles < 100_000:
            cycles += 1
            for method, p, b in ([("PUT", path, body)]
                                 + [("POST", path + "/heartbeat", None)] * a.churn_heartbeats
                                 + [("DELETE", path, None)]):
                if time.monotonic() >= deadline:
                    break
                try:
                    status, _ = await http.request(method, p, b)
                    if status in (200, 201, 204):
                        st.add("registry_ops")
                    else:
                        st.status("registry", status)
                except Exception as e:
                    st.error("registry", why(e))
                await asyncio.sleep(min(a.churn_pause, max(0, deadline - time.monotonic())))
    finally:
        # Leave nothing registered behind.
        try:
            await http.request("DELETE", path)
        except Exception:
            pass
        await http.close()


async def kv_writer(a, st, deadline, worker, rate):
    http = Http(a.api)
    try:
        async for i in paced(deadline, rate, int(rate * a.secs) + 1):
            key = f"soak/{random.randrange(a.kv_keys)}"
            try:
                if random.random() < 0.25:
                    status, _ = await http.request("DELETE", f"/v1/kv/{key}")
                    ok = status in (200, 204, 404)
                else:
                    value = os.urandom(random.randint(16, 512)).hex().encode()
                    status, _ = await http.request("PUT", f"/v1/kv/{key}", value,
                                                   "application/octet-stream")
                    ok = status in (200, 201, 204)
                if ok:
                    st.add("kv_ops")
                else:
                    st.status("kv", status)
            except Exception as e:
                st.error("kv", why(e))
                await asyncio.sleep(0.2)
    finally:
        await http.close()


async def proxied(a, st, deadline, worker, rate):
    http = Http(a.ingress)
    try:
        async for i in paced(deadline, rate, int(rate * a.secs) + 1):
            try:
                status, body = await http.request("GET", f"/soak-echo/w{worker}/{i}?n={i}")
                if status == 200 and b'"path":"/w' in body:
                    st.add("proxied")
                elif status == 200:
                    st.error("proxy", "wrong_body")
                else:
                    st.status("proxy", status)
            except Exception as e:
                st.error("proxy", why(e))
                await asyncio.sleep(0.2)
    finally:
        await http.close()


async def provoked(a, st, deadline):
    """Once a second, a request to a route whose instance listens nowhere: the ingress is
    expected to answer 502/503/504, counted apart from the 5xx that count against the node."""
    http = Http(a.ingress)
    try:
        async for i in paced(deadline, a.provoked_rate, int(a.provoked_rate * a.secs) + 1):
            try:
                status, _ = await http.request("GET", f"/soak-dead/{i}")
                if status >= 500:
                    st.provoked_5xx += 1
                else:
                    st.error("provoked", f"status_{status}")
            except Exception as e:
                st.error("provoked", why(e))
    finally:
        await http.close()


async def keep_registered(a, st, deadline, name, address, prefix):
    http = Http(a.api)
    path = f"/v1/services/{name}/instances/i1"
    body = json.dumps({"address": address, "routes": [{"prefix": prefix, "strip_prefix": True}],
                       "ttl_ms": 10_000}).encode()
    status, text = await http.request("PUT", path, body)
    if status not in (200, 201, 204):
        raise SystemExit(f"soak_load.py: registering {name} answered {status}: {text[:200]!r}")
    beats = 0
    try:
        while time.monotonic() < deadline and beats < 100_000:
            beats += 1
            await asyncio.sleep(min(2, max(0, deadline - time.monotonic())))
            try:
                status, _ = await http.request("POST", path + "/heartbeat")
                if status not in (200, 204):
                    st.status("heartbeat", status)
            except Exception as e:
                st.error("heartbeat", why(e))
    finally:
        try:
            await http.request("DELETE", path)
        except Exception:
            pass
        await http.close()


# --- sampling ---------------------------------------------------------------------------------

def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"):
                fields[name] = int(value.split()[0])
    return fields


def sample(pid):
    s = proc_status(pid)
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return s.get("VmRSS", 0), fds, s.get("Threads", 0)


async def sampler(a, st, t0, deadline, csv, detail):
    """Every INTERVAL seconds, and a last time a second before the deadline (while every loop
    still runs; at the deadline they are closing their connections)."""
    last = deadline - 1.0
    n = 0
    while n < 100_000:
        t = time.monotonic() - t0
        rss, fds, threads = sample(a.pid)
        csv.write(f"{t:.1f},{rss},{fds},{threads},{st.produced()},{st.consumed()},{st.errors_5xx}\n")
        csv.flush()
        detail.append({"time_s": round(t, 1), **proc_status(a.pid)})
        n += 1
        now = time.monotonic()
        if now >= last:
            return
        due = t0 + n * a.interval
        await asyncio.sleep(max(0.0, min(due, last) - now))


def split(total, parts):
    return [total / parts] * parts if parts and total > 0 else []


async def main(a):
    st = Stats()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_addr = f"127.0.0.1:{dead.getsockname()[1]}"
    dead.close()  # nothing listens there any more

    # The routes everything proxied goes through, ready before the load starts.
    setup_deadline = time.monotonic() + a.secs + 30
    keepers = [asyncio.create_task(keep_registered(a, st, setup_deadline, "soak-echo",
                                                   a.upstream, "/soak-echo")),
               asyncio.create_task(keep_registered(a, st, setup_deadline, "soak-dead",
                                                   dead_addr, "/soak-dead"))]
    probe = Http(a.ingress)
    for _ in range(100):
        try:
            status, _ = await probe.request("GET", "/soak-echo/ready")
            if status == 200:
                break
        except Exception:
            pass
        await asyncio.sleep(0.1)
    else:
        raise SystemExit("soak_load.py: the ingress never proxied /soak-echo to the upstream")
    await probe.close()

    t0 = time.monotonic()
    deadline = t0 + a.secs
    tasks = []
    for i, r in enumerate(split(a.http_rate, a.http_workers)):
        tasks.append(http_producer(a, st, deadline, i, r))
    for i, r in enumerate(split(a.ws_rate, a.ws_producers)):
        tasks.append(ws_producer(a, st, deadline, i, r))
    for i in range(a.consumers):
        tasks.append(consumer(a, st, deadline, i, None))
    for i in range(a.reconnecting):
        tasks.append(consumer(a, st, deadline, a.consumers + i, a.reconnect_every))
    for i in range(a.stalled):
        tasks.append(stalled_consumer(a, st, deadline, i))
    for i in range(a.instances):
        tasks.append(registry_churn(a, st, deadline, i))
    for i, r in enumerate(split(a.kv_rate, max(1, round(a.kv_rate / 10)))):
        tasks.append(kv_writer(a, st, deadline, i, r))
    for i, r in enumerate(split(a.proxy_rate, max(1, round(a.proxy_rate / 25)))):
        tasks.append(proxied(a, st, deadline, i, r))
    if a.provoked_rate > 0:
        tasks.append(provoked(a, st, deadline))
    with open(a.csv, "w") as csv:
        csv.write("time_s,rss_kib,fds,threads,produced,consumed,errors_5xx\n")
        detail = []
        tasks.append(sampler(a, st, t0, deadline, csv, detail))
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            st.error("loop", f"crashed_{type(r).__name__}")
            print(f"soak_load.py: a loop crashed: {r!r}", file=sys.stderr)
    for k in keepers:
        k.cancel()
    await asyncio.gather(*keepers, return_exceptions=True)
    # Descriptors once every connection is closed: compare with the node before the load.
    await asyncio.sleep(3)
    rss, fds, threads = sample(a.pid)
    detail.append({"time_s": "after_load", **proc_status(a.pid)})
    with open(a.stats, "w") as f:
        json.dump({"secs": a.secs, "counts": st.counts, "errors": st.errors,
                   "produced": st.produced(), "consumed": st.consumed(),
                   "errors_5xx": st.errors_5xx, "provoked_5xx": st.provoked_5xx,
                   "after_load": {"rss_kib": rss, "fds": fds, "threads": threads},
                   "memory": detail}, f, indent=1)


def env(name, default, kind=int):
    return kind(os.environ.get(name, default))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--api", required=True)
    p.add_argument("--ingress", required=True)
    p.add_argument("--upstream", required=True, help="HOST:PORT of the echo upstream")
    p.add_argument("--pid", type=int, required=True, help="the node's process id")
    p.add_argument("--secs", type=float, default=env("SOAK_SECS", 600, float))
    p.add_argument("--interval", type=float, default=env("SOAK_INTERVAL", 10, float))
    p.add_argument("--csv", required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--http-rate", type=float, default=env("SOAK_HTTP_RATE", 200, float))
    p.add_argument("--http-workers", type=int, default=env("SOAK_HTTP_WORKERS", 20))
    p.add_argument("--ws-rate", type=float, default=env("SOAK_WS_RATE", 500, float))
    p.add_argument("--ws-producers", type=int, default=env("SOAK_WS_PRODUCERS", 2))
    p.add_argument("--event-pad", type=int, default=env("SOAK_EVENT_PAD", 200))
    p.add_argument("--consumers", type=int, default=env("SOAK_CONSUMERS", 20))
    p.add_argument("--reconnecting", type=int, default=env("SOAK_RECONNECTING", 5))
    p.add_argument("--reconnect-every", type=float, default=env("SOAK_RECONNECT_EVERY", 15, float))
    p.add_argument("--stalled", type=int, default=env("SOAK_STALLED", 5))
    p.add_argument("--stall-hold", type=float, default=env("SOAK_STALL_HOLD", 120, float))
    p.add_argument("--instances", type=int, default=env("SOAK_INSTANCES", 20))
    p.add_argument("--churn-heartbeats", type=int, default=env("SOAK_CHURN_HEARTBEATS", 3))
    p.add_argument("--churn-pause", type=float, default=env("SOAK_CHURN_PAUSE", 0.5, float))
    p.add_argument("--kv-rate", type=float, default=env("SOAK_KV_RATE", 50, float))
    p.add_argument("--kv-keys", type=int, default=env("SOAK_KV_KEYS", 200))
    p.add_argument("--proxy-rate", type=float, default=env("SOAK_PROXY_RATE", 50, float))
    p.add_argument("--provoked-rate", type=float, default=env("SOAK_PROVOKED_RATE", 1, float))
    asyncio.run(main(p.parse_args()))
