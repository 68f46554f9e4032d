"""``--out``: never loses a user's file, and is checked before any work (docs/contract.md).

The folder may be new, empty, or an earlier result of the same command (recognised by the
marker ``.mskai-result.json``); anything else needs ``--overwrite``, which replaces only
mskai's own result files. A path that cannot hold the result is refused with exit 2 and one
line before the image is even read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run_cli
from sphere_case import write_sphere_case

from mskai import __version__
from mskai.results.out_folder import MARKER

RESULT_FILES = ("segmentation.seg.nrrd", "measurements.json", "measurements.csv",
                "measurement_units.csv", "report.html")




def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def sphere(tmp_path_factory) -> tuple[Path, Path]:
    """A small image and its tumour label map: a 10 mm sphere on a 1 x 1 x 2 mm grid."""
    return write_sphere_case(tmp_path_factory.mktemp("sphere"), 10.0)


def _tumor(capsys, sphere, out: Path, *extra: str) -> tuple[int, str, str]:
    image, label = sphere
    return run_cli(capsys, "tumor", image, "--labels", label, "--label-names", "tumor=1",
                "--out", out, *extra)


@pytest.fixture
def nothing_is_read(monkeypatch):
    """Fail loudly if a command starts work (reads an image or a result folder)."""
    import mskai.demo
    import mskai.image
    import mskai.tasks.response

    def started(*args, **kwargs):
        raise AssertionError("work started before --out was checked")

    monkeypatch.setattr(mskai.image, "read_image", started)
    monkeypatch.setattr(mskai.tasks.response, "run_response", started)
    monkeypatch.setattr(mskai.demo, "run_demo", started)


# ----- user files are never overwritten -----------------------------------------------------
def test_a_new_folder_is_created_and_marked_as_an_mskai_result(capsys, sphere, tmp_path):
    out = tmp_path / "new" / "out"
    code, _, err = _tumor(capsys, sphere, out)
    assert code == 0, err
    marker = json.loads((out / MARKER).read_text())
    assert marker["command"] == "tumor"
    assert marker["mskai_version"] == __version__
    assert marker["created"]
    assert set(marker["files"]) == set(RESULT_FILES)


def test_an_empty_folder_is_used(capsys, sphere, tmp_path):
    code, _, err = _tumor(capsys, sphere, tmp_path)
    assert code == 0, err
    assert (tmp_path / "measurements.json").is_file()


def test_a_users_report_is_never_overwritten_without_overwrite(capsys, sphere, tmp_path):
    (tmp_path / "report.html").write_text("my own report")
    (tmp_path / "measurements.json").write_text('{"mine": true}')
    code, _, err = _tumor(capsys, sphere, tmp_path)
    assert code == 2
    line = _one_line(err)
    assert "mskai did not write" in line and "--overwrite" in line
    assert (tmp_path / "report.html").read_text() == "my own report"
    assert (tmp_path / "measurements.json").read_text() == '{"mine": true}'
    assert not (tmp_path / MARKER).exists()


def test_any_foreign_file_makes_a_folder_not_ours(capsys, sphere, tmp_path, nothing_is_read):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = _tumor(capsys, sphere, tmp_path)
    assert code == 2
    assert "notes.txt" in _one_line(err)


def test_overwrite_replaces_only_mskais_files_and_keeps_the_rest(capsys, sphere, tmp_path):
    (tmp_path / "report.html").write_text("my own report")
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = _tumor(capsys, sphere, tmp_path, "--overwrite")
    assert code == 0, err
    assert "my own report" not in (tmp_path / "report.html").read_text()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert json.loads((tmp_path / MARKER).read_text())["command"] == "tumor"


def test_rerunning_the_same_command_into_its_result_needs_no_flag(capsys, sphere, tmp_path):
    out = tmp_path / "out"
    assert _tumor(capsys, sphere, out)[0] == 0
    (out / "notes.txt").write_text("added by me")
    code, _, err = _tumor(capsys, sphere, out, "--margin-mm", "5")
    assert code == 0, err
    doc = json.loads((out / "measurements.json").read_text())
    assert doc["margin"]["margin_mm"] == 5.0
    assert (out / "notes.txt").read_text() == "added by me"


def test_a_result_file_the_user_edited_is_not_replaced(capsys, sphere, tmp_path):
    out = tmp_path / "out"
    assert _tumor(capsys, sphere, out)[0] == 0
    (out / "report.html").write_text("annotated by hand")
    code, _, err = _tumor(capsys, sphere, out)
    assert code == 2
    line = _one_line(err)
    assert "report.html was changed after mskai wrote it" in line and "--overwrite" in line
    assert (out / "report.html").read_text() == "annotated by hand"
    assert _tumor(capsys, sphere, out, "--overwrite")[0] == 0


def test_the_result_of_another_command_is_not_replaced(capsys, sphere, tmp_path,
                                                       nothing_is_read):
    image, label = sphere
    (tmp_path / "measurements.json").write_text("{}")
    (tmp_path / MARKER).write_text(json.dumps({"command": "tumor", "files": {
        "measurements.json": None}}))
    code, _, err = run_cli(capsys, "radiomics", image, label, "--out", tmp_path)
    assert code == 2
    assert "holds the result of 'mskai tumor', not 'mskai radiomics'" in _one_line(err)
    assert (tmp_path / "measurements.json").read_text() == "{}"


@pytest.mark.parametrize("command", ["tumor", "cartilage", "fracture", "radiomics",
                                     "response", "demo"])
def test_every_command_refuses_a_users_folder_before_any_work(capsys, sphere, tmp_path,
                                                              command, nothing_is_read):
    image, label = sphere
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.html").write_text("my own report")
    inputs = {"tumor": [image, "--seed-ras", "0,0,0"], "cartilage": [image],
              "fracture": [image], "radiomics": [image, label],
              "response": [image.parent, image.parent], "demo": []}[command]
    code, _, err = run_cli(capsys, command, *inputs, "--out", out)
    assert code == 2
    assert "--overwrite" in _one_line(err)
    assert (out / "report.html").read_text() == "my own report"
    assert "--overwrite" in run_cli(capsys, command, "--help")[1]


def test_response_marks_its_folder_and_reruns_into_it(capsys, sphere, tmp_path):
    base, follow = tmp_path / "base", tmp_path / "follow"
    assert _tumor(capsys, sphere, base)[0] == 0
    assert _tumor(capsys, sphere, follow)[0] == 0
    out = tmp_path / "response"
    for _ in range(2):
        code, _, err = run_cli(capsys, "response", base, follow, "--out", out)
        assert code == 0, err
    marker = json.loads((out / MARKER).read_text())
    assert marker["command"] == "response"
    assert set(marker["files"]) == {"response.json", "response.html"}
    code, _, err = _tumor(capsys, sphere, out)
    assert code == 2
    assert "'mskai response'" in _one_line(err)


# ----- --out is checked before any work -----------------------------------------------------
def _can_write(folder: Path) -> bool:
    try:
        (folder / ".probe").write_text("")
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


@pytest.fixture
def read_only_folder(tmp_path_factory) -> Path:
    """A folder this process cannot write to (root ignores modes: then a kernel folder)."""
    folder = tmp_path_factory.mktemp("read-only")
    folder.chmod(0o555)
    if _can_write(folder):
        folder = Path("/sys/kernel")
    if not folder.is_dir() or _can_write(folder):
        pytest.fail("no read-only folder available on this machine")
    yield folder
    if folder.name.startswith("read-only"):
        folder.chmod(0o755)


def _bad_out(kind: str, tmp_path: Path, image: Path, read_only: Path) -> tuple[Path, str]:
    """``--out`` for each kind of bad path, and what the one-line error must say."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    if kind == "a file":
        return a_file, "is a file, not a folder"
    if kind == "a path under a file":
        return a_file / "out", f"lies under the file {a_file}"
    if kind == "a read-only folder":
        return read_only / "out", "is not writable"
    if kind == "a symlink loop":
        (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
        (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
        return tmp_path / "loop_a", "is a symbolic link loop"
    if kind == "a broken symlink":
        (tmp_path / "dangling").symlink_to(tmp_path / "gone")
        return tmp_path / "dangling", "does not exist"
    if kind == "the input image":
        return image, "is the input image itself"
    if kind == "the folder of the input":
        return image.parent, "contains the input image"
    raise AssertionError(kind)


BAD_OUTS = ["a file", "a path under a file", "a read-only folder", "a symlink loop",
            "a broken symlink", "the input image", "the folder of the input"]


@pytest.mark.parametrize("kind", BAD_OUTS)
def test_a_bad_out_is_refused_before_the_image_is_read(capsys, sphere, tmp_path, kind,
                                                       read_only_folder, nothing_is_read):
    out, expected = _bad_out(kind, tmp_path, sphere[0], read_only_folder)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = _tumor(capsys, sphere, out)
    assert code == 2, err
    line = _one_line(err)
    assert expected in line
    assert "internal error" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_the_input_dicom_folder_is_not_an_output_folder(capsys, test_data, nothing_is_read):
    dicom = test_data / "sts_sarcoma" / "STS_002_CT_dicom_5slices"
    before = sorted(p.name for p in dicom.iterdir())
    code, _, err = run_cli(capsys, "fracture", dicom, "--out", dicom)
    assert code == 2
    assert "is the input image itself" in _one_line(err)
    code, _, err = run_cli(capsys, "fracture", dicom, "--out", dicom.parent, "--overwrite")
    assert code == 2
    assert "contains the input image" in _one_line(err)
    assert sorted(p.name for p in dicom.iterdir()) == before


def test_a_labels_file_inside_out_is_never_written_over(capsys, sphere, tmp_path,
                                                       nothing_is_read):
    """Re-measuring an edited segmentation into the folder it came from would replace it."""
    image, label = sphere
    out = tmp_path / "out"
    out.mkdir()
    edited = out / "segmentation.seg.nrrd"
    edited.write_bytes(label.read_bytes())
    code, _, err = run_cli(capsys, "tumor", image, "--labels", edited, "--label-names",
                        "tumor=1", "--out", out, "--overwrite")
    assert code == 2
    assert "contains the input labels" in _one_line(err)
    assert edited.read_bytes() == label.read_bytes()


def test_a_full_disk_is_found_before_the_work(capsys, sphere, tmp_path, monkeypatch,
                                              nothing_is_read):
    import shutil

    from mskai.results import out_folder

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(out_folder.shutil, "disk_usage",
                        lambda path: usage._replace(free=10 * 2**20))
    code, _, err = _tumor(capsys, sphere, tmp_path / "out")
    assert code == 2
    line = _one_line(err)
    assert "only 10 MB free" in line and "another disk" in line
    assert not (tmp_path / "out").exists()
