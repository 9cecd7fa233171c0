"""What the test helper servers share: exiting with the process that started them."""

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
