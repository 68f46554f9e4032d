"""``mskai serve`` in a real browser (Debian's chromium, headless, through Playwright).

On STS_002's CT: a click inside the tumour in the axial view gives the tumour segment and
its volume in the measurements panel (checked against the expert mask's volume); painting an
extra region raises the volume; a second click refines the tumour and keeps the painted
voxels. On a CT phantom with one known fracture FractureDetect lists it first; Go moves the
views to it and Accept records the decision. On ``mskai demo``'s synthetic DESS knee
CartilageQuant runs in the page: the femoral cartilage volume is checked against the
phantom's label and the failed plausibility checks are shown. Screenshots of the three
module panels go to the test's temporary folder, or, with ``MSKAI_UPDATE_SCREENSHOTS=1``
(``make screenshots``), to docs/images/web_*.png (shown in the README): a test run never
rewrites tracked files. Rendering is off-screen (EGL); every wait is on an explicit
condition.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from web_browser import (
    CT,
    CT_MASK,
    REPO,
    axial_geometry,
    browser_page,
    click_at,
    ras_to_pixel,
    require_browser,
    served,
    shown_slice,
    state,
    wait_state,
)

from mskai.terminology import FEMORAL_CARTILAGE, TUMOR

DOC_SHOTS = REPO / "docs" / "images"
UPDATE_SHOTS = "MSKAI_UPDATE_SCREENSHOTS"
EXPERT_TOLERANCE = 0.25       # the click result's volume within 25 % of the expert mask's
PAINT_DISTANCE_MM = (12.0, 16.0)   # where the extra region is painted, from the expert mask
# ... and this far from the bone mskai finds on the CT: soft tissue at -100..150 HU 12-16 mm
# from this tumour includes the femur's marrow (4.8 mm away), and paint that reaches bone
# rightly makes the tumour-to-bone distance 0 (the brush is ~10 mm, the stroke ~8 mm)
BONE_CLEARANCE_MM = 20.0
MIN_PAINTED_ML = 0.05
NOT_BUSY = "!s('mskai_busy')"
FRACTURE_NEAR_MM = 10.0       # the best candidate within 10 mm of the phantom's fracture
FRACTURE_PLANE_MM = 1.0       # after Go, the axial view's plane passes through it
# The default knee model on `mskai demo`'s synthetic DESS knee: femoral cartilage volume
# within 30 % of the phantom's exact label. Measured 2026-12-06 in Python (run_segmentation):
# knee_unet_v3 12.60 mL against 10.64 mL (+18.4 %) with its femoral cartilage logit bias,
# 14.63 mL (+37.5 %) without it (knee_unet_v2 13.38 mL, +26 %); the model
# cards say the plate comes out too thick, so the bound checks the workflow, not accuracy
FEMORAL_TOLERANCE = 0.30
KNEE_VIEWPORT = {"width": 1500, "height": 1400}


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where the panel screenshots go: docs/images only when asked (``make screenshots``)."""
    folder = DOC_SHOTS if os.environ.get(UPDATE_SHOTS) == "1" else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def case():
    """The image and the expert mask of STS_002's CT."""
    from mskai.image import read_image

    image = read_image(CT)
    return image, read_image(CT_MASK).array > 0


def command_result(image, seed):
    """``mskai tumor`` with one click at ``seed`` (margin 10 mm, the page's default): the
    tumour-to-bone distance and the distance (mm) of every voxel to its bone."""
    from scipy import ndimage

    from mskai.interactive import Prompts
    from mskai.tasks.tumor import run_tumor, segment_prompts
    from mskai.terminology import BONE

    mask = segment_prompts(image, Prompts([tuple(seed)]))
    result = run_tumor(image, None, margin_mm=10.0, labels={TUMOR: mask})
    to_bone = ndimage.distance_transform_edt(~result.segment(BONE).mask,
                                             sampling=tuple(reversed(image.spacing)))
    return result.measurements["margin"]["min_distance_to_bone_mm"], to_bone


def seed_in_slice(truth: np.ndarray, k: int, image) -> np.ndarray:
    """RAS of the deepest tumour voxel of slice ``k`` (in-plane distance)."""
    from scipy import ndimage

    inside = ndimage.distance_transform_edt(truth[k], sampling=image.spacing[1::-1])
    j, i = np.unravel_index(np.argmax(inside), inside.shape)
    return image.index_to_ras([i, j, k])


def paint_spot(truth: np.ndarray, k: int, image, geometry: dict, seed_xy,
               to_bone: np.ndarray) -> np.ndarray:
    """RAS of soft tissue 12-16 mm outside the expert tumour in slice ``k`` and well away
    from bone, well inside the view, nearest to the seed on screen."""
    from scipy import ndimage

    outside = ndimage.distance_transform_edt(~truth[k], sampling=image.spacing[1::-1])
    hu = image.array[k]
    near = (outside >= PAINT_DISTANCE_MM[0]) & (outside <= PAINT_DISTANCE_MM[1]) \
        & (to_bone[k] >= BONE_CLEARANCE_MM)
    candidates = np.argwhere(near & (hu > -100) & (hu < 150))
    best, best_distance = None, np.inf
    for j, i in candidates:
        ras = image.index_to_ras([i, j, k])
        x, y = ras_to_pixel(geometry, ras)
        inside_view = (geometry["left"] + 40 < x < geometry["left"] + geometry["w"] - 40
                       and geometry["top"] + 40 < y < geometry["top"] + geometry["h"] - 40)
        distance = np.hypot(x - seed_xy[0], y - seed_xy[1])
        if inside_view and distance < best_distance:
            best, best_distance = ras, distance
    assert best is not None, "no soft tissue near the tumour inside the axial view"
    return best


def tumour_volume(page) -> float:
    return float(page.text_content("#mskai-tumour-volume"))


def measured(page, after: int, timeout_s: float = 60.0) -> int:
    """Wait for a measurement newer than ``after``; returns its count."""
    wait_state(page, f"s('mskai_measure_count') > {after} && {NOT_BUSY}", timeout_s)
    return int(state(page, "mskai_measure_count"))


def test_click_paint_and_click_again_in_the_browser(case, tmp_path, shots):
    require_browser()
    image, truth = case
    expert_ml = float(truth.sum()) * image.voxel_volume_mm3 / 1000.0
    started = time.monotonic()
    with served(CT, tmp_path / "out") as url, browser_page() as page:
        # without the token the page gets no connection and no state
        page.goto(url.split("?")[0] + "?secret=not-the-token-0000")
        page.wait_for_function("() => document.body.innerText.includes('connect')",
                               timeout=30000)
        assert page.evaluate("() => !(window.trame && window.trame.state)")
        page.goto(url)
        geometry = axial_geometry(page)
        k = shown_slice(geometry, image)
        assert truth[k].any(), "the axial view opens on a slice without tumour"
        seed = seed_in_slice(truth, k, image)
        seed_xy = ras_to_pixel(geometry, seed)

        # 1. a click inside the tumour -> tumour segment and its volume
        page.click("#mskai-click-positive")
        wait_state(page, "s('mskai_click_mode') === 'positive'")
        click_at(page, seed_xy)
        count = measured(page, 0)
        first = tumour_volume(page)
        assert abs(first - expert_ml) <= EXPERT_TOLERANCE * expert_ml, (first, expert_ml)
        assert "tumor created" in page.text_content("#mskai-last-actions")
        # the distance to bone is the command's for the same click (0 where the tumour
        # found from this seed touches the femur: 2 voxels of slice 23 for a seed on 24)
        distance = state(page, "mskai_bone_distance_mm")
        command_distance, to_bone = command_result(image, seed)
        assert distance == pytest.approx(command_distance, abs=0.05)
        print(f"axial slice {k}: distance to bone {distance} mm")

        # 2. paint an extra region with the segment editor -> the volume rises
        spot = ras_to_pixel(geometry, paint_spot(truth, k, image, geometry, seed_xy, to_bone))
        page.click("#mskai-paint")
        wait_state(page, "s('mskai_click_mode') === ''")
        page.mouse.move(*spot)
        page.mouse.down()
        for step in range(1, 11):
            page.mouse.move(spot[0] + 2 * step, spot[1], steps=2)
        page.mouse.up()
        count = measured(page, count)
        painted = tumour_volume(page)
        assert painted >= first + MIN_PAINTED_ML, (first, painted)
        # paint far from bone leaves the tumour's nearest point to bone where it was
        assert state(page, "mskai_bone_distance_mm") == pytest.approx(distance, abs=0.05)

        # 3. click again: the tumour is refined from the painted mask, the paint stays
        page.click("#mskai-click-positive")
        wait_state(page, "s('mskai_click_mode') === 'positive'")
        click_at(page, (seed_xy[0] + 3, seed_xy[1] + 3))
        wait_state(page, "s('mskai_click_count') >= 2")
        wait_state(page, "(s('mskai_last_actions') || '').includes('backup')")
        wait_state(page, f"!s('mskai_measure_pending') && {NOT_BUSY}")
        assert tumour_volume(page) >= painted - 0.01, (painted, tumour_volume(page))
        page.click("#mskai-click-stop")
        page.screenshot(path=str(shots / "web_tumorseg.png"))

        # export: the CLI's writers on what the segmentation holds now
        page.click("#mskai-export")
        wait_state(page, "(s('mskai_exported') || '').startsWith('TumorSeg:') && " + NOT_BUSY)
        folder = tmp_path / "out" / "tumor"
        assert (folder / "report.html").is_file() and (folder / "segmentation.seg.nrrd").is_file()
        exported = json.loads((folder / "measurements.json").read_text())
        tumour = next(s for s in exported["segments"] if s["id"] == TUMOR)
        assert tumour["volume_ml"] == pytest.approx(tumour_volume(page), abs=0.01)
        # 4. FractureDetect on a CT phantom with a known fracture, opened by its path
        bone, fracture = fracture_phantom(tmp_path)
        open_path(page, bone)
        page.click("#mskai-module-FractureDetect")
        page.click("#mskai-fracture-run")
        wait_state(page, "s('mskai_candidates').length > 0 && " + NOT_BUSY, 180)
        best = state(page, "mskai_candidates")[0]
        assert best["reported"]
        assert np.linalg.norm(np.subtract(best["position_ras"], fracture)) < FRACTURE_NEAR_MM
        page.click("#mskai-candidates button:has-text('Go')")
        wait_state(page, on_axial_plane(best["position_ras"], FRACTURE_PLANE_MM))
        page.click("#mskai-candidates button:has-text('Accept')")
        wait_state(page, "s('mskai_decisions')['0'] === 'accepted'")
        page.screenshot(path=str(shots / "web_fracturedetect.png"))

    print(f"browser test took {time.monotonic() - started:.0f} s")


def test_cartilage_quant_in_the_browser(tmp_path, shots):
    """CartilageQuant run in the page on ``mskai demo``'s synthetic DESS knee (140x140x112,
    1 mm): the table's femoral cartilage volume against the phantom's exact label, the
    thickness map shown, and the failed anatomical checks (if any) shown as the CLI words
    them, next to the plates that passed."""
    require_browser()
    knee, truth_ml = demo_knee(tmp_path)
    started = time.monotonic()
    with served(knee, tmp_path / "out") as url, browser_page() as page:
        page.set_viewport_size(KNEE_VIEWPORT)   # the table, the checks and the map in one shot
        page.goto(url)
        wait_state(page, f"s('mskai_image_name') === '{knee.name.split('.')[0]}'")
        page.click("#mskai-module-CartilageQuant")
        page.wait_for_selector("#mskai-knee-run", state="visible")
        page.evaluate("() => window.trame.state.set('mskai_knee_side', 'right')")
        wait_state(page, "s('mskai_knee_side') === 'right'")
        page.click("#mskai-knee-run")
        wait_state(page, "s('mskai_cartilage_rows').length > 0 && s('mskai_thickness_png') "
                   "&& " + NOT_BUSY, 180)
        rows = {r["id"]: r for r in state(page, "mskai_cartilage_rows")}
        femoral = float(rows[FEMORAL_CARTILAGE]["volume_ml"])
        print(f"femoral cartilage {femoral:.2f} mL, phantom {truth_ml:.2f} mL")
        assert abs(femoral - truth_ml) <= FEMORAL_TOLERANCE * truth_ml, (femoral, truth_ml)
        page.wait_for_selector("#mskai-thickness-map", state="visible")
        page.wait_for_function("() => document.querySelector('#mskai-thickness-map').complete")
        checks = state(page, "mskai_knee_checks")
        if checks:
            page.wait_for_selector("#mskai-knee-checks", state="visible")
            assert "failed the anatomical checks" in page.text_content("#mskai-knee-checks")
        print(f"checks: {checks!r}")
        page.screenshot(path=str(shots / "web_cartilagequant.png"))
    print(f"cartilage browser test took {time.monotonic() - started:.0f} s")


def demo_knee(folder):
    """``mskai demo``'s synthetic DESS knee (:func:`mskai.demo.synthetic_dess_knee`)
    written to ``folder``: its file and the volume (mL) of its femoral cartilage label."""
    from mskai.demo import synthetic_dess_knee
    from mskai.image import write_image
    from mskai.phantoms.knee_anatomy import LABELS

    volume, case = synthetic_dess_knee()
    code = next(k for k, v in LABELS.items() if v == FEMORAL_CARTILAGE)
    truth_ml = float((case.labels == code).sum()) * float(case.spacing) ** 3 / 1000.0
    return write_image(volume, folder / "synthetic_dess_knee.nrrd"), truth_ml


def on_axial_plane(ras, tolerance_mm: float) -> str:
    """A page-state expression: the point lies within ``tolerance_mm`` of the axial view's
    plane (any orientation: the plane's normal is the third column of XY-to-RAS)."""
    return ("(() => { const m = s('mskai_views')['Red'].xy_to_ras; "
            "const n = [m[2], m[6], m[10]], o = [m[3], m[7], m[11]]; "
            f"const p = [{ras[0]}, {ras[1]}, {ras[2]}]; "
            "const d = (p[0]-o[0])*n[0] + (p[1]-o[1])*n[1] + (p[2]-o[2])*n[2]; "
            f"return Math.abs(d) / Math.hypot(...n) < {tolerance_mm}; }})()")


def open_path(page, path) -> None:
    """Open an image through the page's path field (a file on the server's disk)."""
    page.fill("#mskai-open-path", str(path))
    page.click("#mskai-open")
    wait_state(page, f"s('mskai_image_name') === '{path.name.split('.')[0]}'")


def fracture_phantom(folder):
    """A CT long bone with one displaced, angulated fracture (``mskai demo``'s, 70 mm long):
    its file and the fracture's centre in RAS."""
    from mskai.image import write_image
    from mskai.phantoms.long_bone import fractured_long_bone

    phantom = fractured_long_bone(length_mm=70.0, fracture_position_mm=35.0,
                                  translation_mm=(4.0, 2.0, 0.0), angulation_deg=12.0,
                                  gap_mm=6.0, body_radius_mm=30.0, noise_sd=15.0)
    return (write_image(phantom.image, folder / "long_bone_phantom.nrrd"),
            phantom.truth.fractures[0].center_ras)
