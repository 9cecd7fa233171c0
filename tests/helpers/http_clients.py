#!/usr/bin/env python3
"""Real HTTP, WebSocket and SSE clients from outside Godot, for the HttpServer tests.

Usage: http_clients.py PLAN_JSON OUT_JSON

PLAN: {"jobs": [JOB, ...]}. The jobs run concurrently (a job's "delay": seconds to wait first); OUT gets {"results": [RESULT, ...]}
in the same order, or {"error": "..."} if the plan itself failed. Every wait is bounded.
  {"curl": [ARG, ...]}
      runs curl with ARGs (add -s, -w, ...); RESULT {"code": exit code, "out": stdout, "err": stderr}
  {"http": {"method", "url", "headers": {}, "body": str, "timeout": s}}
      aiohttp; RESULT {"status", "headers": {lower-case: value}, "body": text} or {"error"}
  {"ws": {"url", "headers": {}, "ca": path, "send": [text, ...], "receive": n, "wait_close": bool}}
      websockets; sends, then receives n messages, then closes (or waits for the server to);
      RESULT {"received": [...], "close_code", "error"}
  {"ws_many": {"url", "count": n, "receive": m}}
      n clients connect at once and each receives m messages;
      RESULT {"connected": n, "received": [count per client], "errors": [...]}
  {"sse": {"url", "headers": {}, "events": n}}
      reads n events of a text/event-stream; RESULT {"status", "events": [{event, data, id}], "error"}
  {"raw": {"port", "chunks": [str, ...], "pause": s, "read": s}}
      TCP: sends each chunk (pausing between them), then reads until EOF or `read` seconds;
      RESULT {"answer": text, "eof": bool}
"""

import asyncio
import json
import ssl
import sys

import aiohttp
import websockets

TIMEOUT_SEC = 15.0


async def curl(args):
    proc = await asyncio.create_subprocess_exec(
        "curl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_SEC)
    return {"code": proc.returncode, "out": out.decode("utf-8", "replace"), "err": err.decode("utf-8", "replace")}


async def http(spec):
    timeout = aiohttp.ClientTimeout(total=spec.get("timeout", TIMEOUT_SEC))
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.request(
                spec.get("method", "GET"), spec["url"], headers=spec.get("headers", {}), data=spec.get("body")
            ) as res:
                body = await res.text(errors="replace")
                return {"status": res.status, "headers": {k.lower(): v for k, v in res.headers.items()}, "body": body}
    except Exception as e:  # the test reads the error
        return {"error": f"{type(e).__name__}: {e}"}


async def ws(spec):
    result = {"received": [], "close_code": None, "error": None}
    try:
        ssl_context = ssl.create_default_context(cafile=spec["ca"]) if "ca" in spec else None
        async with websockets.connect(
            spec["url"], additional_headers=spec.get("headers", {}), open_timeout=TIMEOUT_SEC, ssl=ssl_context
        ) as conn:
            for text in spec.get("send", []):
                await conn.send(text)
            for _ in range(spec.get("receive", 0)):
                message = await asyncio.wait_for(conn.recv(), TIMEOUT_SEC)
                result["received"].append(message if isinstance(message, str) else list(message))
            if spec.get("wait_close"):
                try:
                    await asyncio.wait_for(conn.recv(), TIMEOUT_SEC)
                except websockets.ConnectionClosed:
                    pass
            elif spec.get("close", True):
                await conn.close()
            result["close_code"] = conn.close_code
    except websockets.ConnectionClosed as e:
        result["close_code"] = e.rcvd.code if e.rcvd else 1006
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
    return result


async def ws_many(spec):
    counts = [0] * spec["count"]
    errors = []
    connected = 0

    async def client(i):
        nonlocal connected
        try:
            async with websockets.connect(spec["url"], open_timeout=TIMEOUT_SEC) as conn:
                connected += 1
                for _ in range(spec.get("receive", 1)):
                    await asyncio.wait_for(conn.recv(), TIMEOUT_SEC)
                    counts[i] += 1
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")

    await asyncio.gather(*(client(i) for i in range(spec["count"])))
    return {"connected": connected, "received": counts, "errors": errors[:5]}


async def sse(spec):
    result = {"status": None, "events": [], "error": None}
    try:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SEC)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(spec["url"], headers=spec.get("headers", {})) as res:
                result["status"] = res.status
                event = {"event": "message", "data": [], "id": ""}
                while len(result["events"]) < spec.get("events", 1):
                    line = (await res.content.readline()).decode("utf-8")
                    if line == "":
                        break
                    line = line.rstrip("\n")
                    if line == "":
                        result["events"].append(dict(event, data="\n".join(event["data"])))
                        event = {"event": "message", "data": [], "id": ""}
                    elif ":" in line:
                        field, value = line.split(":", 1)
                        value = value[1:] if value.startswith(" ") else value
                        if field == "data":
                            event["data"].append(value)
                        elif field in ("event", "id"):
                            event[field] = value
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
    return result


async def raw(spec):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", spec["port"]), TIMEOUT_SEC)
    for i, chunk in enumerate(spec.get("chunks", [])):
        if i > 0:
            await asyncio.sleep(spec.get("pause", 0))
        try:
            writer.write(chunk.encode("utf-8"))
            await writer.drain()
        except ConnectionError:
            break
    answer = b""
    eof = False
    try:
        while True:
            data = await asyncio.wait_for(reader.read(65536), spec.get("read", 5.0))
            if not data:
                eof = True
                break
            answer += data
    except (asyncio.TimeoutError, ConnectionError):
        pass
    writer.close()
    return {"answer": answer.decode("utf-8", "replace"), "eof": eof}


JOBS = {"curl": curl, "http": http, "ws": ws, "ws_many": ws_many, "sse": sse, "raw": raw}


async def run(plan):
    async def one(job):
        (kind, spec), = ((k, v) for k, v in job.items() if k != "delay")
        await asyncio.sleep(job.get("delay", 0))
        try:
            return await JOBS[kind](spec)
        except Exception as e:
            return {"error": f"{type(e).__name__}: {e}"}

    return {"results": await asyncio.gather(*(one(job) for job in plan["jobs"]))}


def main():
    plan, out_path = json.loads(sys.argv[1]), sys.argv[2]
    try:
        result = asyncio.run(run(plan))
    except Exception as e:
        result = {"error": f"{type(e).__name__}: {e}"}
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
