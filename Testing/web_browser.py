"""Driving ``mskai serve`` in Debian's chromium through Playwright (the browser test and the
latency benchmark share this).

Without /usr/bin/chromium (or Playwright) the browser test skips with one line saying how to
install it; with ``MSKAI_REQUIRE_BROWSER=1`` (set by ``.ci/run``, which installs chromium) it
fails instead, so CI can never skip it. Playwright never downloads a browser here: it is
started on ``executablePath /usr/bin/chromium``.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = ("apt-get install chromium (Debian's chromium at /usr/bin/chromium) to run the "
           "browser test")
REQUIRE = "MSKAI_REQUIRE_BROWSER"
REPO = Path(__file__).resolve().parent.parent
STS = Path(__file__).resolve().parent / "Data" / "sts_sarcoma"
CT = STS / "STS_002_CT_image.nii.gz"
CT_MASK = STS / "STS_002_CT_mask.nii.gz"
START_TIMEOUT_S = 60.0
VIEWPORT = {"width": 1500, "height": 900}
AXIAL = "Red"   # the layout name of the axial slice view

# The axial view's XY-to-RAS matrix and its <img> on the page, once the view has its size.
AXIAL_GEOMETRY = """(name) => {
  const t = window.trame;
  const v = (t && t.state && t.state.get('mskai_views') || {})[name];
  const img = document.querySelectorAll('img.image-display-area')[0];
  if (!v || !img) return null;
  const r = img.getBoundingClientRect();
  if (Math.round(r.width) !== v.size[0] || Math.round(r.height) !== v.size[1]) return null;
  return {m: v.xy_to_ras, left: r.left, top: r.top, w: r.width, h: r.height};
}"""


def missing_browser() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not CHROMIUM.is_file():
        return INSTALL
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "pip install playwright (requirements/dev.txt) to run the browser test"
    return None


def require_browser() -> None:
    """Skip (or, with MSKAI_REQUIRE_BROWSER=1, fail) when chromium or Playwright is absent."""
    import pytest

    reason = missing_browser()
    if reason is None:
        return
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} (required here: {REQUIRE}=1)")
    pytest.skip(reason)


@contextmanager
def served(image: Path, out: Path) -> Iterator[str]:
    """``mskai serve IMAGE`` on a free port; yields the page URL (with its token) and stops
    the server (its whole process group) afterwards."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    stderr_path = out.parent / "serve.stderr"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "mskai", "serve", str(image), "--port", "0", "--out", str(out)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
            start_new_session=True)
    try:
        yield _wait_for_url(process, stderr_path)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers; gone already is fine."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _wait_for_url(process: subprocess.Popen, stderr_path: Path) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                said = stderr_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"mskai serve exited with {process.returncode}: "
                                   + " | ".join(said)) from None
            continue
        if "http://" in line:
            return line[line.index("http://"):].strip()
    raise RuntimeError(f"mskai serve printed no URL within {START_TIMEOUT_S:.0f} s")


@contextmanager
def browser_page() -> Iterator[object]:
    """A headless chromium page (Debian's binary) of :data:`VIEWPORT` size."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport=VIEWPORT)
        finally:
            browser.close()


def state(page, name: str):
    return page.evaluate("(n) => window.trame.state.get(n)", name)


def wait_state(page, expression: str, timeout_s: float = 60.0) -> None:
    """Wait until a JavaScript ``expression`` of ``s`` (the page state getter) is true."""
    page.wait_for_function(f"() => {{ const s = (n) => window.trame.state.get(n); "
                           f"return !!(window.trame && window.trame.state) && ({expression}); }}",
                           timeout=timeout_s * 1000, polling=50)


def axial_geometry(page, timeout_s: float = 60.0) -> dict:
    return page.wait_for_function(AXIAL_GEOMETRY, arg=AXIAL,
                                  timeout=timeout_s * 1000).json_value()


def ras_to_pixel(geometry: dict, ras) -> tuple[float, float]:
    """Page pixel of a RAS point on the axial view's plane."""
    matrix = np.reshape(geometry["m"], (4, 4))
    x, y = np.linalg.solve(matrix, np.r_[np.asarray(ras, float), 1.0])[:2]
    return geometry["left"] + x, geometry["top"] + geometry["h"] - y


def shown_slice(geometry: dict, image) -> int:
    """The k index of the axial slice the view shows."""
    matrix = np.reshape(geometry["m"], (4, 4))
    centre = matrix @ np.array([geometry["w"] / 2, geometry["h"] / 2, 0.0, 1.0])
    return int(round(float(image.ras_to_index(centre[:3])[2])))


def click_at(page, xy: tuple[float, float]) -> None:
    page.mouse.move(*xy)
    page.mouse.down()
    page.mouse.up()
