"""The Dashboard demo in a real browser: headless Debian chromium driven through chromium-driver
and Selenium (run by `cargo xtask test`, step `dashboard`; see rust/xtask/src/commands/dashboard_test.rs).

Loads the page the demo game serves, waits until the WebSocket is live and the game's numbers
(frame, uptime) change, types a name and presses the spawn button, then waits until the game's next snapshot
lists that character. Prints one `CHECK ok|FAIL what` line per check and exits 0 when all passed.

    python dashboard_browser.py --url http://127.0.0.1:PORT/ --name NAME [--chromedriver PATH]
"""

import argparse
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

# How long each wait may take (the game runs headless on a loaded 2-core machine).
WAIT_SEC = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()

    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver's path is given, so Selenium does not try to download one (offline).
    driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
    failed = 0

    def check(ok: bool, what: str) -> bool:
        nonlocal failed
        print(f"CHECK {'ok' if ok else 'FAIL'} {what}", flush=True)
        failed += 0 if ok else 1
        return ok

    def text(element_id: str) -> str:
        return driver.find_element(By.ID, element_id).text.strip()

    def wait_for(condition, what: str) -> bool:
        deadline = time.monotonic() + WAIT_SEC
        while time.monotonic() < deadline:
            try:
                if condition():
                    return check(True, what)
            except Exception:  # the page may still be building the element
                pass
            time.sleep(0.1)
        return check(False, f"{what} (not within {WAIT_SEC:.0f} s)")

    try:
        driver.get(args.url)
        check(driver.title.startswith("Async Net"), f"the page loads (title '{driver.title}')")
        rules = driver.execute_script(
            "return Array.from(document.styleSheets).reduce((n, s) => n + s.cssRules.length, 0)")
        check(rules > 10, f"its stylesheet applies ({rules} rules)")
        if wait_for(lambda: text("status") == "live", "the WebSocket to the game is live"):
            first = int(text("frame"))
            wait_for(lambda: int(text("frame")) > first, f"the game's frame number moves on from {first}")
            uptime = float(text("uptime"))
            wait_for(lambda: float(text("uptime")) > uptime, f"the game's uptime moves on from {uptime} s")
            check(float(text("step-usec")) >= 0.0, f"the hub's longest step is shown ({text('step-usec')} µs)")
            check(int(text("tasks")) > 0, f"the hub's task count is shown ({text('tasks')})")
            wait_for(lambda: "HttpServer" in text("nodes"), "the node table lists the HttpServer")

        driver.find_element(By.ID, "spawn-name").send_keys(args.name)
        driver.find_element(By.ID, "spawn").click()
        wait_for(lambda: f"spawned '{args.name}'" in text("spawn-result"), "the game answers the spawn")
        wait_for(
            lambda: args.name in [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#characters li")],
            f"the game's snapshot lists '{args.name}'")

        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        check(not errors, f"the browser console has no errors {errors}")
    finally:
        driver.quit()
    print(f"{'passed' if failed == 0 else f'{failed} check(s) failed'}", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
