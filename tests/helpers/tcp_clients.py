#!/usr/bin/env python3
"""Real TCP clients from outside Godot, for the TcpSpawnerServer tests.

Usage: tcp_clients.py PLAN_JSON OUT_JSON

PLAN: {"port": int, "clients": [CLIENT, ...]}. All clients connect first
(concurrently, one thread each), then each one runs its steps:
  {"send": "text"}        send UTF-8 text
  {"send_hex": "ff0a"}    send raw bytes
  {"read": n}             read n reply lines (5 s each)
  {"close": true}         close the socket now (e.g. mid-line)
  {"expect_eof": true}    read until the server closes (5 s)
  {"set": "name"}         signal the event "name" to the other clients
  {"wait": "name"}        wait until a client signalled "name" (5 s)
A client whose first step is a "wait" connects only after it, so it can
connect while another client is connected (e.g. one over the server's limit).
OUT: {"clients": [{"replies": [...], "eof": bool, "error": str|null}, ...]}
Loopback only; every wait is bounded.
"""

import json
import socket
import sys
import threading

TIMEOUT_SEC = 5.0


def wait_event(events, name):
    if not events[name].wait(TIMEOUT_SEC):
        raise TimeoutError(f"no client signalled {name!r} in {TIMEOUT_SEC} s")


def connects_later(steps):
    return bool(steps) and "wait" in steps[0]


def run_client(port, steps, barrier, events, result):
    later = connects_later(steps)
    try:
        if later:
            wait_event(events, steps[0]["wait"])
            steps = steps[1:]
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_SEC)
    except OSError as e:
        result["error"] = f"connect: {e}"
        if not later:
            barrier.abort()
        return
    buffer = b""
    try:
        if not later:
            barrier.wait(TIMEOUT_SEC)
        for step in steps:
            if "send" in step:
                sock.sendall(step["send"].encode())
            elif "send_hex" in step:
                sock.sendall(bytes.fromhex(step["send_hex"]))
            elif "read" in step:
                for _ in range(step["read"]):
                    while b"\n" not in buffer:
                        chunk = sock.recv(65536)
                        if not chunk:
                            result["eof"] = True
                            raise EOFError("closed while reading")
                        buffer += chunk
                    line, buffer = buffer.split(b"\n", 1)
                    result["replies"].append(line.decode("utf-8", "replace"))
            elif "set" in step:
                events[step["set"]].set()
            elif "wait" in step:
                wait_event(events, step["wait"])
            elif step.get("close"):
                sock.close()
                return
            elif step.get("expect_eof"):
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        result["eof"] = True
                        break
    except (OSError, EOFError, threading.BrokenBarrierError) as e:
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        sock.close()


def main():
    plan = json.loads(sys.argv[1])
    clients = plan["clients"]
    results = [{"replies": [], "eof": False, "error": None} for _ in clients]
    barrier = threading.Barrier(max(1, sum(not connects_later(steps) for steps in clients)))
    names = {step[key] for steps in clients for step in steps for key in ("set", "wait") if key in step}
    events = {name: threading.Event() for name in names}
    threads = [
        threading.Thread(target=run_client, args=(plan["port"], steps, barrier, events, result))
        for steps, result in zip(clients, results)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT_SEC * 4)
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        json.dump({"clients": results}, out)


if __name__ == "__main__":
    main()
