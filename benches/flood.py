"""Bounded connection flood against a running portcullis, on 127.0.0.1 only.

Also runs the upstream the proxy forwards to: `/endless` streams 64 KiB chunks until
the proxy hangs up. Usage (benches/flood.sh starts the proxy and runs this):
    python3 benches/flood.py PROXY_PORT PROXY_PID UPSTREAM_PORT
Knobs (environment): IDLE=6000 SLOW=300 PHASE=12 (seconds per phase) CALLBACKS=10 (per
client, four clients).
"""

import asyncio
import os
import sys
import time

HOST = "127.0.0.1"
IDLE = int(os.environ.get("IDLE", "6000"))
SLOW = int(os.environ.get("SLOW", "300"))
PHASE = float(os.environ.get("PHASE", "12"))
CALLBACKS = int(os.environ.get("CALLBACKS", "10"))
REQ = b"GET %s HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
upstream_gone = []


async def upstream(port):
    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        if b" /endless " in head:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
            try:
                while True:
                    writer.write(chunk)
                    await writer.drain()
            except (ConnectionError, OSError):
                upstream_gone.append(time.monotonic())
                print(f"upstream: /endless connection closed by the proxy", flush=True)
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, HOST, port)
    return server


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


async def healthz(reader, writer):
    """One /healthz on an open keep-alive connection; its latency in ms, or None."""
    started = time.monotonic()
    try:
        writer.write(REQ % b"/healthz")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        return (time.monotonic() - started) * 1000 if b" 200 " in head else None
    except (asyncio.TimeoutError, OSError, IndexError, ValueError, asyncio.IncompleteReadError):
        return None


async def fresh_healthz(port, bound):
    """/healthz on a new connection: seconds until answered, or None within `bound`."""
    started = time.monotonic()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port), bound)
        ms = await asyncio.wait_for(healthz(r, w), bound)
        w.close()
        return None if ms is None else time.monotonic() - started
    except (asyncio.TimeoutError, OSError):
        return None


async def watch(port, pid, stop, samples, label):
    r, w = await asyncio.open_connection(HOST, port)
    while not stop.is_set():
        ms = await healthz(r, w)
        samples.append((time.monotonic(), fds(pid), ms))
        if ms is None:  # reconnect (the idle deadline may have closed it)
            w.close()
            try:
                r, w = await asyncio.open_connection(HOST, port)
            except OSError:
                pass
        await asyncio.sleep(0.5)
    w.close()


async def idle_flood(port):
    """IDLE connections that send nothing; how many connected, and how many the
    proxy had closed by the end of the phase."""
    conns, failed = [], 0

    async def one():
        nonlocal failed
        try:
            conns.append(await asyncio.wait_for(asyncio.open_connection(HOST, port), 3))
        except (asyncio.TimeoutError, OSError):
            failed += 1

    await asyncio.gather(*(one() for _ in range(IDLE)))
    await asyncio.sleep(PHASE)
    closed = 0
    for r, w in conns:
        try:
            data = await asyncio.wait_for(r.read(1), 0.01)
            closed += data == b""
        except asyncio.TimeoutError:
            pass
        except OSError:
            closed += 1
        w.close()
    return len(conns), failed, closed


async def slow_headers(port):
    """SLOW clients that send a request head one byte a second; seconds each lived."""
    lived = []

    async def one():
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port), 3)
        except (asyncio.TimeoutError, OSError):
            return
        started = time.monotonic()
        try:
            for b in b"GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Slow: " + b"a" * 100:
                w.write(bytes([b]))
                await w.drain()
                if await_closed(r) or time.monotonic() - started > PHASE:
                    break
                await asyncio.sleep(1)
        except OSError:
            pass
        lived.append(time.monotonic() - started)
        w.close()

    def await_closed(r):
        return r.at_eof()

    await asyncio.gather(*(one() for _ in range(SLOW)))
    return lived


async def slow_reader(port):
    """One client reads the head of /endless, then stops reading. Seconds until the
    proxy closed the upstream side, or None."""
    r, w = await asyncio.open_connection(HOST, port)
    w.write(REQ % b"/endless")
    await w.drain()
    await r.readuntil(b"\r\n\r\n")
    # Stop reading; the transport stops reading when its buffer is full.
    w.transport.pause_reading()
    started = time.monotonic()
    deadline = started + 3 * PHASE
    while not upstream_gone and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    w.close()
    return upstream_gone[0] - started if upstream_gone else None


async def callback_flood(port):
    """Four clients each send CALLBACKS sign-in callbacks whose query holds 12,000
    distinct parameter names (56 KB, under the 64 KiB head limit). Returns the statuses
    and the slowest answer in ms."""
    query = "&".join(f"{i:x}" for i in range(12000)).encode()
    request = b"GET /oauth2/callback?" + query + b" HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
    statuses, slowest = {}, 0.0

    async def one():
        nonlocal slowest
        r, w = await asyncio.open_connection(HOST, port)
        try:
            for _ in range(CALLBACKS):
                started = time.monotonic()
                w.write(request)
                await w.drain()
                head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
                status = int(head.split(b" ")[1])
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await r.readexactly(length)
                slowest = max(slowest, (time.monotonic() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
                if b"connection: close" in head.lower():
                    w.close()
                    r, w = await asyncio.open_connection(HOST, port)
        except (ConnectionError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            statuses["error"] = statuses.get("error", 0) + 1
        finally:
            w.close()

    await asyncio.gather(*(one() for _ in range(4)))
    return statuses, slowest


async def flood(port, pid):
    stop = asyncio.Event()
    samples = []
    print(f"proxy pid {pid}: {fds(pid)} descriptors before the flood", flush=True)
    watcher = asyncio.create_task(watch(port, pid, stop, samples, "idle"))
    opened, failed, closed = await idle_flood(port)
    fresh = await fresh_healthz(port, 15)
    print(f"idle flood: {IDLE} connections tried, {opened} connected, {failed} failed to "
          f"connect within 3 s, {closed} closed by the proxy within {PHASE:.0f} s; "
          f"/healthz on a new connection afterwards: "
          f"{'none' if fresh is None else f'{fresh:.2f} s'}", flush=True)
    lived = await slow_headers(port)
    if lived:
        print(f"slow headers: {len(lived)} clients, lived max {max(lived):.1f} s, "
              f"median {sorted(lived)[len(lived) // 2]:.1f} s", flush=True)
    gone = await slow_reader(port)
    print("slow reader: upstream side closed "
          + ("never (within the bound)" if gone is None else f"{gone:.1f} s after it stopped reading"),
          flush=True)
    started = time.monotonic()
    statuses, slowest = await callback_flood(port)
    during = [ms for t, _, ms in samples if t >= started and ms is not None]
    print(f"callback flood: 4 clients x {CALLBACKS} callbacks of 12,000 names: statuses "
          f"{statuses}, slowest {slowest:.0f} ms; /healthz meanwhile: "
          + (f"{len(during)} answered, max {max(during):.0f} ms" if during else "no sample"),
          flush=True)
    stop.set()
    await watcher
    answered = [ms for _, _, ms in samples if ms is not None]
    print(f"/healthz on a kept connection: {len(answered)}/{len(samples)} answered, "
          f"max {max(answered):.0f} ms" if answered else "/healthz: never answered", flush=True)
    print(f"proxy descriptors: max {max(f for _, f, _ in samples)} during the flood, "
          f"{fds(pid)} after", flush=True)


async def main():
    port, pid, upstream_port = (int(a) for a in sys.argv[1:4])
    server = await upstream(upstream_port)
    async with server:
        await flood(port, pid)


if __name__ == "__main__":
    asyncio.run(main())
