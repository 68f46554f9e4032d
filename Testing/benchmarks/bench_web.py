"""Web viewer latency from the browser's side: a click in the axial view to the frame that
shows the new tumour overlay (``mskai serve`` on STS_002's CT, Debian's chromium, headless).

The browser records the time of the click (its pointerup) and of the first new frame
of the axial view after the page state says the click's result is in the segmentation;
each repeat starts over (no tumour), so every click is a first click. Baseline: the same
click's segmentation called directly in Python (``segment_prompts``, no server, no
browser), the floor the web path adds its overhead to. ``python bench_web.py`` prints the
median and worst of more clicks.
"""

from __future__ import annotations

import atexit
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from bench_case import Case, Measured

CLICKS = 8
# Resolves with {click, applied, frame} (performance.now() ms) for the next click's result.
WATCH = """(before) => {
  const img = document.querySelectorAll('img.image-display-area')[0];
  window.__mskaiLatency = new Promise((resolve) => {
    let click = null, applied = null, seen = null;
    document.addEventListener('pointerup', () => { click = performance.now(); },
                              {once: true, capture: true});
    const tick = () => {
      if (applied === null && window.trame.state.get('mskai_apply_count') > before) {
        applied = performance.now(); seen = img.src;
      }
      if (applied !== null && img.src !== seen) {
        resolve({click, applied, frame: performance.now()}); return;
      }
      requestAnimationFrame(tick);
    };
    tick();
  });
}"""

_SESSION: dict = {}


def prepare():
    """The image and the seed (deepest voxel of the expert mask on the slice the view shows
    is picked in the browser session; this is the same point for the baseline)."""
    from web_browser import CT, CT_MASK

    from mskai.image import read_image

    return {"image": read_image(CT), "truth": read_image(CT_MASK).array > 0}


def _session(prepared) -> dict:
    """Server, browser and page, started once per process and closed at exit."""
    if _SESSION:
        return _SESSION
    from test_web_viewer import seed_in_slice
    from web_browser import CT, axial_geometry, browser_page, ras_to_pixel, served, shown_slice

    stack = ExitStack()
    atexit.register(stack.close)
    out = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    url = stack.enter_context(served(CT, out))
    page = stack.enter_context(browser_page())
    page.goto(url)
    geometry = axial_geometry(page)
    seed = seed_in_slice(prepared["truth"], shown_slice(geometry, prepared["image"]),
                         prepared["image"])
    _SESSION.update(page=page, seed=seed, xy=ras_to_pixel(geometry, seed))
    return _SESSION


def web_click(prepared) -> Measured:
    """Start over, then one click; seconds from the click to the frame with the overlay."""
    from web_browser import click_at, state, wait_state

    session = _session(prepared)
    page = session["page"]
    page.click("#mskai-start-over")
    wait_state(page, "!s('mskai_busy') && !s('mskai_measure_pending') && "
                     "s('mskai_tumour_volume_ml') === null")
    page.click("#mskai-click-positive")
    wait_state(page, "s('mskai_click_mode') === 'positive'")
    page.evaluate(WATCH, state(page, "mskai_apply_count"))
    click_at(page, session["xy"])
    times = page.evaluate("() => window.__mskaiLatency")
    return Measured((times["frame"] - times["click"]) / 1000.0)


def direct_segmentation(prepared) -> np.ndarray:
    """The click's segmentation alone, in this process (the same call the click job makes)."""
    from mskai.interactive import Prompts
    from mskai.interactive.clicks import deepest_voxel
    from mskai.tasks.tumor import segment_prompts

    image, truth = prepared["image"], prepared["truth"]
    seed = image.index_to_ras(deepest_voxel(truth, tuple(reversed(image.spacing)))[::-1])
    return segment_prompts(image, Prompts([tuple(seed)]))


CASES = [Case("web viewer: click to overlay in chromium (STS_002 CT)", prepare, web_click,
              direct_segmentation, "the same segmentation called in Python")]


def main() -> None:
    prepared = prepare()
    web_click(prepared)   # warm-up: server, browser, first grid
    seconds = [float(web_click(prepared)) for _ in range(CLICKS)]
    print(f"| click to overlay, {CLICKS} clicks | median {statistics.median(seconds):.2f} s | "
          f"worst {max(seconds):.2f} s | best {min(seconds):.2f} s |")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parent), str(here.parents[1] / "MSKAIExtension")]
    main()
