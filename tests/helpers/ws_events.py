#!/usr/bin/env python3
"""A WebSocket client from outside Godot that records what a server sends, for the editor
server's test (tests/editor_tests/editor_tests.gd): connects, writes `connected` and then each
text message as one line of OUT (flushed at once), until the server closes or --seconds pass.

Usage: ws_events.py --url ws://127.0.0.1:PORT/events [--token TOKEN] --out OUT [--seconds N]
"""

import argparse
import asyncio

from websockets.asyncio.client import connect


async def record(url: str, token: str, out_path: str, seconds: float) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with open(out_path, "w", encoding="utf-8") as out:
        try:
            async with connect(url, additional_headers=headers, open_timeout=10) as socket:
                out.write("connected\n")
                out.flush()
                async with asyncio.timeout(seconds):
                    async for message in socket:
                        out.write((message if isinstance(message, str) else message.hex()) + "\n")
                        out.flush()
        except TimeoutError:
            pass
        except Exception as err:  # reported to the test, which fails on it
            out.write(f"error {type(err).__name__}: {err}\n")
            out.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(record(args.url, args.token, args.out, args.seconds))


if __name__ == "__main__":
    main()
