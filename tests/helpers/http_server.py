#!/usr/bin/env python3
"""An aiohttp server for the HttpSession tests and the Fetch demo (installed
by `cargo xtask test` into target/venv): streaming, server-sent events,
slow and faulty responses, uploads echoed back. Loopback only.

Usage: http_server.py --port P [--parent PID]

Paths:
  /echo                  the request as JSON: method, path, query, headers, body (text, "" when
                         binary), body_bytes, sha256
  /status/CODE           that status, with a text body
  /json?n=N              a small JSON document (N items)
  /feed                  the Fetch demo's news feed: {"updated": "HH:MM:SS UTC",
                         "items": [{id, tag, title, minutes_ago}]}, turning by one item a second
  /bytes/N               N bytes (i * 7 % 251)
  /ndjson?n=N&delay=MS   N JSON lines, one every MS milliseconds (chunked)
  /sse                   events with ids, multi-line data, a named event, a comment and retry, then closes
  /sse/reconnect         first connection: retry 100, id 7, then closes; later ones send the
                         Last-Event-ID they got, closing again; from the third on: 204
  /sse/ticker?interval=MS&count=N   a live ticker: N events (0: forever), one every MS ms
  /encoded/ENCODING      a text body compressed with gzip, deflate, br or zstd
  /stall                 headers, then nothing (a read timeout must fire)
  /stall-body            headers and part of the body, then nothing
  /reset                 headers (Content-Length 100000) and part of the body, then the connection is cut
  /big-header            a response with a 1 MiB header
  /cookie/set?name=V     sets a cookie; /cookie/get shows the Cookie header it got
  /redirect?to=URL       302 to URL
"""

import argparse
import asyncio
import gzip
import hashlib
import json
import math
import sys
import time
import zlib

from aiohttp import web
from parent_watch import serve_until_done

TEXT = ("The quick brown fox jumps over the lazy dog. " * 200).encode()


def pattern(n):
    return bytes((i * 7) % 251 for i in range(n))


def as_text(body):
    """The body as text when it is text (binary bodies are described by size and hash)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    return "" if "\0" in text else text


async def echo(request):
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": {k: request.query.getall(k) for k in request.query.keys()},
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": as_text(body),
            "body_bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
    )


async def status(request):
    code = int(request.match_info["code"])
    return web.Response(status=code, text=f"status {code}\n", headers={"X-Repeated": "one"})


async def small_json(request):
    n = int(request.query.get("n", "3"))
    return web.json_response({"items": [{"id": i, "name": f"item {i}"} for i in range(n)]})


FEED = [
    ("release", "async-net now brings HttpSession and AsyncHub.fetch"),
    ("server", "Patch 1.2.7 is rolling out to every region"),
    ("event", "Weekend tournament: brackets are up"),
    ("community", "Level editor contest: 48 entries so far"),
    ("server", "EU-West maintenance tonight, 02:00 to 02:30 UTC"),
    ("release", "HTTP/2, brotli and zstd, proxies with Basic auth"),
]


async def feed(request):
    """A JSON news feed whose order turns by one item a second, so a refresh shows a change."""
    now = time.time()
    turn = int(now) % len(FEED)
    items = [FEED[(turn + i) % len(FEED)] for i in range(len(FEED))]
    return web.json_response(
        {
            "updated": time.strftime("%H:%M:%S UTC", time.gmtime(now)),
            "items": [
                {"id": i + 1, "tag": tag, "title": title, "minutes_ago": 3 + 11 * i} for i, (tag, title) in enumerate(items)
            ],
        }
    )


async def some_bytes(request):
    return web.Response(body=pattern(int(request.match_info["n"])), content_type="application/octet-stream")


async def ndjson(request):
    n = int(request.query.get("n", "10"))
    delay = float(request.query.get("delay", "0")) / 1000
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    for i in range(n):
        await response.write(json.dumps({"n": i, "text": "ünïcode ✓"}).encode() + b"\n")
        if delay:
            await asyncio.sleep(delay)
    await response.write_eof()
    return response


async def event_stream(request, headers=None):
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **(headers or {})})
    await response.prepare(request)
    return response


async def sse(request):
    response = await event_stream(request)
    # Written in awkward pieces: the client must not care where TCP cuts.
    body = (
        b": a comment\n"
        b"retry: 5000\n"
        b"id: 1\ndata: first\n\n"
        b"event: score\r\nid: 2\r\ndata: line one\r\ndata: line two\r\n\r\n"
        b"data: no id given keeps the last\n\n"
        b"data: cut event is dropped"
    )
    for i in range(0, len(body), 7):
        await response.write(body[i : i + 7])
        await asyncio.sleep(0.001)
    return response


RECONNECTS = {"count": 0}


async def sse_reconnect(request):
    RECONNECTS["count"] += 1
    count = RECONNECTS["count"]
    if count >= 3:
        RECONNECTS["count"] = 0
        return web.Response(status=204)
    response = await event_stream(request)
    if count == 1:
        await response.write(b"retry: 100\nid: 7\ndata: before the drop\n\n")
    else:
        last = request.headers.get("Last-Event-ID", "none")
        await response.write(f"id: 8\ndata: last id {last}\n\n".encode())
    return response


async def ticker(request):
    interval = float(request.query.get("interval", "500")) / 1000
    count = int(request.query.get("count", "0"))
    response = await event_stream(request)
    i = 0
    while count == 0 or i < count:
        i += 1
        price = round(100 + 6 * math.sin(i / 2.5) + 2.5 * math.sin(i * 1.3), 2)
        await response.write(f"event: tick\nid: {i}\ndata: {json.dumps({'n': i, 'price': price})}\n\n".encode())
        await asyncio.sleep(interval)
    return response


def compress(encoding, data):
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "br":
        import brotli

        return brotli.compress(data)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    raise web.HTTPNotFound()


async def encoded(request):
    encoding = request.match_info["encoding"]
    body = compress(encoding, TEXT)
    return web.Response(body=body, headers={"Content-Encoding": encoding, "Content-Type": "text/plain; charset=utf-8"})


async def stall(request):
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    await asyncio.sleep(3600)
    return response


async def partial_body(request, sent):
    """A response announcing 100000 bytes, of which `sent` are written."""
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = 100000
    await response.prepare(request)
    await response.write(pattern(sent))
    return response


async def stall_body(request):
    response = await partial_body(request, 1000)
    await asyncio.sleep(3600)
    return response


async def reset(request):
    response = await partial_body(request, 5000)
    await asyncio.sleep(0.05)
    request.transport.abort()
    return response


async def big_header(request):
    return web.Response(text="big", headers={"X-Big": "x" * (1 << 20)})


async def cookie_set(request):
    response = web.Response(text="set")
    for name, value in request.query.items():
        response.set_cookie(name, value)
    return response


async def cookie_get(request):
    return web.Response(text=request.headers.get("Cookie", ""))


async def redirect(request):
    raise web.HTTPFound(request.query["to"])


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent", type=int)
    args = parser.parse_args()
    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/json", small_json)
    app.router.add_get("/feed", feed)
    app.router.add_get("/bytes/{n}", some_bytes)
    app.router.add_get("/ndjson", ndjson)
    app.router.add_get("/sse", sse)
    app.router.add_get("/sse/reconnect", sse_reconnect)
    app.router.add_get("/sse/ticker", ticker)
    app.router.add_get("/encoded/{encoding}", encoded)
    app.router.add_get("/stall", stall)
    app.router.add_get("/stall-body", stall_body)
    app.router.add_get("/reset", reset)
    app.router.add_get("/big-header", big_header)
    app.router.add_get("/cookie/set", cookie_set)
    app.router.add_get("/cookie/get", cookie_get)
    app.router.add_get("/redirect", redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    print("ready", flush=True)
    await serve_until_done(args.parent)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
