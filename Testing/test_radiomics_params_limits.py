"""``mskai radiomics --params FILE``: a parameter file cannot exhaust memory or hide its error.

Every refusal is exit 2 with exactly one line on stderr that names the setting and says
what to use instead. The limits (mskai/radiomics/limits.py): at most 64 KiB of parameter
file, no YAML anchors or aliases, at most 50 million resampled voxels, at most 10,000 grey
levels, and an estimate of the run's memory below the memory available.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mskai.cli import main

PHANTOM = Path(__file__).resolve().parent / "Data" / "ibsi" / "digital_phantom"
PHANTOM_SETTINGS = {"binWidth": 1, "label": 1, "normalize": False, "voxelArrayShift": 0}


def radiomics(tmp_path: Path, params_text: str, capsys) -> tuple[int, list[str]]:
    """Run ``mskai radiomics`` on the IBSI phantom with this parameter file's text."""
    params = tmp_path / "params.yaml"
    params.write_text(params_text)
    capsys.readouterr()
    code = main(["radiomics", str(PHANTOM / "phantom.nii.gz"), str(PHANTOM / "mask.nii.gz"),
                 "--params", str(params), "--out", str(tmp_path / "out")])
    return code, capsys.readouterr().err.splitlines()


def settings_yaml(**settings) -> str:
    return json.dumps({"setting": {**PHANTOM_SETTINGS, **settings},
                       "featureClass": {"firstorder": None, "glcm": None}})


def assert_refused(code: int, err: list[str], *words: str) -> None:
    assert code == 2
    assert len(err) == 1, err
    for word in words:
        assert word in err[0], err[0]


# ----- the file itself --------------------------------------------------------------------

BILLION_LAUGHS = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]"
       for p, c in zip("abcde", "bcdef", strict=True)]  # f: 9**6 strings when expanded
    + ["setting: {binWidth: 1}"])


def test_a_yaml_alias_bomb_is_refused_before_it_is_expanded(tmp_path, capsys):
    start = time.monotonic()
    code, err = radiomics(tmp_path, BILLION_LAUGHS, capsys)
    assert_refused(code, err, "params.yaml", "anchors or aliases")
    assert time.monotonic() - start < 10  # refused on the parser's events: nothing built


def test_even_a_harmless_alias_is_refused(tmp_path, capsys):
    code, err = radiomics(tmp_path, "setting:\n  binWidth: &w 1\n  label: *w\n", capsys)
    assert_refused(code, err, "anchors or aliases", "write each value out")


def test_a_parameter_file_larger_than_64_kib_is_refused_unread(tmp_path, capsys):
    text = settings_yaml() + "\n" + "# padding\n" * 10_000
    code, err = radiomics(tmp_path, text, capsys)
    assert_refused(code, err, "bytes", "64 KiB")


# ----- settings that would allocate without bound ----------------------------------------

def test_a_tiny_resampled_spacing_is_refused_with_the_allowed_range(tmp_path, capsys):
    code, err = radiomics(tmp_path, settings_yaml(resampledPixelSpacing=[0.01, 0.01, 0.01]),
                          capsys)
    assert_refused(code, err, "resampledPixelSpacing [0.01, 0.01, 0.01]",
                   "50,000,000 allowed", "use a spacing of about")


def test_a_tiny_bin_width_is_refused_with_the_smallest_allowed(tmp_path, capsys):
    code, err = radiomics(tmp_path, settings_yaml(binWidth=1e-7), capsys)
    assert_refused(code, err, "binWidth 1e-07", "10,000 allowed", "binWidth of at least")


def test_a_huge_bin_count_is_refused_with_the_allowed_range(tmp_path, capsys):
    settings = {k: v for k, v in PHANTOM_SETTINGS.items() if k != "binWidth"}
    text = json.dumps({"setting": {**settings, "binCount": 100_000}})
    code, err = radiomics(tmp_path, text, capsys)
    assert_refused(code, err, "binCount 100000", "from 1 to 10,000")


def test_settings_whose_glcm_exceeds_the_available_memory_are_refused(tmp_path, capsys,
                                                                       monkeypatch):
    from mskai.radiomics import limits

    monkeypatch.setattr(limits, "available_memory", lambda: 512 * 1024**2)
    # 2,500 grey levels: the GLCM alone is 2,500^2 x 13 directions x 8 bytes, 0.65 GB
    code, err = radiomics(tmp_path, settings_yaml(binWidth=0.002), capsys)
    assert_refused(code, err, "GLCM of 2,50", "increase binWidth")


def test_resampling_within_the_limits_still_runs(tmp_path, capsys):
    code, err = radiomics(tmp_path, settings_yaml(resampledPixelSpacing=[1, 1, 1]), capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "measurements.json").read_text())
    assert doc["feature_standard"]["params"]["setting"]["resampledPixelSpacing"] == [1, 1, 1]


# ----- wrong types: one line naming the setting and the expected type --------------------

@pytest.mark.parametrize("value, shown", [
    ('"abc"', "'abc' (text)"),
    ("[1, 2]", "[1, 2] (list)"),
    ('"25"', "'25' (text)"),   # pykwalify takes numeric text for a float; pyradiomics cannot
    ("-3", "-3 (number)"),
    (".nan", "nan (number)"),
])
def test_a_bin_width_of_the_wrong_type_names_the_setting_and_the_type(tmp_path, capsys,
                                                                       value, shown):
    code, err = radiomics(tmp_path, f"setting:\n  binWidth: {value}\n", capsys)
    assert_refused(code, err, f"setting binWidth is {shown}", "must be a number > 0")


def test_a_list_setting_given_a_number_names_the_expected_list(tmp_path, capsys):
    code, err = radiomics(tmp_path, "setting:\n  resampledPixelSpacing: 1\n", capsys)
    assert_refused(code, err, "resampledPixelSpacing is 1 (number)", "a list of numbers >= 0")


def test_a_misspelt_setting_is_named(tmp_path, capsys):
    code, err = radiomics(tmp_path, "setting:\n  binwidth: 5\n", capsys)
    assert_refused(code, err, "unknown setting 'binwidth'", "spelling")


def test_an_unknown_feature_class_is_one_line_without_pykwalify_log(tmp_path, capsys,
                                                                      caplog):
    code, err = radiomics(tmp_path, "featureClass:\n  texture:\n", capsys)
    assert_refused(code, err, "Feature Class texture is not recognized")
    # pykwalify logs its findings as three ERROR lines, which reach stderr outside pytest
    assert not [r for r in caplog.records if r.name.startswith("pykwalify")]


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path, capsys):
    code, err = radiomics(tmp_path, "- binWidth\n- 25\n", capsys)
    assert_refused(code, err, "holds a list", "setting / imageType / featureClass")
