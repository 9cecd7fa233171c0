"""What the test helper servers share: running until told to stop or until the process that
started them is gone."""

import asyncio
import os


async def watch_parent(parent):
    """Exits when the process that started us is gone (a crashed test run)."""
    while True:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass
        await asyncio.sleep(0.5)


async def serve_until_done(parent, *others):
    """Waits forever, or until `parent` (a pid; None: no watch) is gone or one of `others` ends."""
    tasks = [asyncio.Future(), *(asyncio.ensure_future(other) for other in others)]
    if parent:
        tasks.append(asyncio.ensure_future(watch_parent(parent)))
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
