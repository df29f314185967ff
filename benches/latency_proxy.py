#!/usr/bin/env python3
"""An HTTP/1.1 proxy that adds a fixed latency to every request and counts them.

What an object store costs from far away is mostly its round trip: OSS answers FC in the same
region in about 20 ms, a laptop in more. A loopback S3 server answers in well under a
millisecond, so a reader that fetches thousands of small objects one at a time looks fast there
and is not. This proxy sits in front of the loopback server and holds each request for
`--delay-ms` before passing it on, so a benchmark sees the cost per request that a remote store
would charge, and it counts the requests by kind.

Each client connection gets its own upstream connection; requests on one connection are framed
(Content-Length or chunked bodies), delayed, and forwarded in order; responses are piped back
untouched. Stats: `GET /__proxy/stats` answers the counts as JSON, `POST /__proxy/reset` zeroes
them (both answered by the proxy itself, never forwarded).

    python3 benches/latency_proxy.py --listen 127.0.0.1:9555 --upstream 127.0.0.1:8333 --delay-ms 20
"""

import argparse
import asyncio
import json
import sys
from collections import Counter

COUNTS: Counter = Counter()


def kind(method: str, target: str, headers: dict) -> str:
    """The request's kind, as verify counts them: list, get, range, head, put, delete, post."""
    query = target.split("?", 1)[1] if "?" in target else ""
    if method == "GET":
        if "list-type=" in query:
            return "list"
        return "range" if "range" in headers else "get"
    return method.lower()


async def read_head(reader: asyncio.StreamReader):
    """The request line and headers, or None at the end of the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return head, method, target, headers


async def copy_body(reader, writer, headers):
    """Forwards the request body: Content-Length bytes, or chunks until the last one."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = await reader.readuntil(b"\r\n")
            writer.write(size_line)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                # Trailers, then the empty line.
                while True:
                    line = await reader.readuntil(b"\r\n")
                    writer.write(line)
                    if line == b"\r\n":
                        return
            writer.write(await reader.readexactly(size + 2))
    n = int(headers.get("content-length", "0") or 0)
    while n > 0:
        chunk = await reader.read(min(n, 1 << 20))
        if not chunk:
            raise ConnectionError("body cut short")
        writer.write(chunk)
        n -= len(chunk)
        await writer.drain()


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def answer(writer, status: str, body: bytes):
    writer.write(
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()


async def handle(client_r, client_w, upstream, delay):
    up_r = up_w = None
    back = None
    try:
        while True:
            got = await read_head(client_r)
            if got is None:
                break
            head, method, target, headers = got
            if target.startswith("/__proxy/"):
                if target == "/__proxy/reset":
                    COUNTS.clear()
                body = json.dumps(dict(COUNTS, total=sum(COUNTS.values())), sort_keys=True).encode()
                await answer(client_w, "200 OK", body)
                continue
            COUNTS[kind(method, target, headers)] += 1
            if up_w is None:
                host, port = upstream
                up_r, up_w = await asyncio.open_connection(host, port)
                back = asyncio.ensure_future(pipe(up_r, client_w))
            await asyncio.sleep(delay)
            up_w.write(head)
            await copy_body(client_r, up_w, headers)
            await up_w.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        if up_w is not None:
            try:
                up_w.close()
            except Exception:
                pass
        if back is not None:
            try:
                await asyncio.wait_for(back, 5)
            except Exception:
                back.cancel()
        try:
            client_w.close()
        except Exception:
            pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:9555")
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the S3 server")
    ap.add_argument("--delay-ms", type=float, default=20.0)
    a = ap.parse_args()
    lh, lp = a.listen.rsplit(":", 1)
    uh, up = a.upstream.rsplit(":", 1)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, (uh, int(up)), a.delay_ms / 1000.0), lh, int(lp), limit=1 << 20
    )
    print(f"latency proxy on {a.listen} -> {a.upstream}, +{a.delay_ms} ms per request", file=sys.stderr)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
