"""The repository is a buildable Slicer extension: CMake lists, UI files, catalog entry,
start-up-safe imports, and the settings/diagnostics core behind the hidden MSKAI module."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FEATURE_MODULES = ("FractureDetect", "CartilageQuant", "TumorSeg")
#: folder -> module name built there by slicerMacroBuildScriptedModule
MODULE_DIRS = {"MSKAIExtension": "MSKAI", **{m: m for m in FEATURE_MODULES}}
RESOURCE_SUFFIXES = {".png", ".ui", ".txt", ".json", ".html", ".css", ".md", ".yaml", ".yml",
                     ".csv"}
HEAVY = {"torch", "monai", "onnxruntime", "radiomics", "SimpleITK", "scipy", "skimage",
         "nibabel", "pydicom", "highdicom", "mskai.inference", "mskai.models", "mskai.tasks"}
SLICER_ONLY = {"slicer", "qt", "ctk", "MSKAILib", *(f"{m}Lib" for m in FEATURE_MODULES)}


# --- helpers -------------------------------------------------------------------------


def cmake_text(path: Path) -> str:
    """CMake source without comments."""
    return "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())


def cmake_calls(text: str, command: str) -> list[list[str]]:
    """Arguments of every ``command(...)`` call (no nested parentheses in our files)."""
    pattern = re.compile(rf"\b{command}\s*\(([^)]*)\)", re.IGNORECASE)
    return [re.findall(r'"[^"]*"|[^\s]+', args) for args in pattern.findall(text)]


def cmake_sets(text: str) -> dict[str, list[str]]:
    return {args[0]: [a.strip('"') for a in args[1:]] for args in cmake_calls(text, "set") if args}


def expand_globs(text: str, folder: Path) -> dict[str, list[str]]:
    """Evaluate ``file(GLOB_RECURSE VAR RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} ...)`` calls."""
    result: dict[str, list[str]] = {}
    for args in cmake_calls(text, "file"):
        if args[0] != "GLOB_RECURSE":
            continue
        assert args[2:4] == ["RELATIVE", "${CMAKE_CURRENT_SOURCE_DIR}"], args
        files: set[str] = set()
        for pattern in args[4:]:
            if pattern == "CONFIGURE_DEPENDS":
                continue
            relative = pattern.replace("${CMAKE_CURRENT_SOURCE_DIR}/", "")
            base, _, glob = relative.rpartition("/")
            files.update(p.relative_to(folder).as_posix()
                         for p in (folder / base).rglob(glob) if p.is_file())
        result[args[1]] = sorted(files)
    return result


def listed_files(folder: Path) -> tuple[set[str], set[str]]:
    """(scripts, resources) that ``folder/CMakeLists.txt`` hands to the build macro."""
    text = cmake_text(folder / "CMakeLists.txt")
    variables = {**cmake_sets(text), **expand_globs(text, folder)}

    def expand(name: str) -> set[str]:
        out: set[str] = set()
        for item in variables[name]:
            whole = re.fullmatch(r"\$\{(\w+)\}", item)
            if whole and whole.group(1) != "MODULE_NAME":
                out.update(variables[whole.group(1)])
            else:
                out.add(item.replace("${MODULE_NAME}", variables["MODULE_NAME"][0]))
        return out

    return expand("MODULE_PYTHON_SCRIPTS"), expand("MODULE_PYTHON_RESOURCES")


def existing_files(folder: Path) -> tuple[set[str], set[str]]:
    """(python files, resource files) present in a module folder."""
    scripts, resources = set(), set()
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if not path.is_file() or "__pycache__" in rel.parts or rel.parts[0].endswith(".egg-info"):
            continue
        if path.suffix == ".py":
            scripts.add(rel.as_posix())
        elif path.suffix in RESOURCE_SUFFIXES and path.name != "CMakeLists.txt" and (
                rel.parts[0] in ("Resources", "mskai")):
            resources.add(rel.as_posix())
    return scripts, resources


def top_level_imports(path: Path) -> set[str]:
    """Modules imported when the file is imported (not those inside functions/classes)."""
    names: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If | ast.Try | ast.With):
                for block in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, block, []):
                        visit(child.body if isinstance(child, ast.ExceptHandler) else [child])

    visit(ast.parse(path.read_text()).body)
    return names


def matches(name: str, prefixes: set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def ui_names_used(path: Path) -> set[str]:
    """Every ``self.ui.<name>`` in a Python file."""
    return {node.attr for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "ui" and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "self"}


def ui_widgets(path: Path) -> dict[str, ET.Element]:
    return {w.get("name"): w for w in ET.parse(path).getroot().iter("widget")}


def parameter_fields(path: Path, class_name: str) -> set[str]:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {s.target.id for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
    raise AssertionError(f"{class_name} not found in {path}")


# --- (a) root CMakeLists -----------------------------------------------------------------


def test_root_cmakelists_declares_the_extension():
    text = cmake_text(REPO / "CMakeLists.txt")
    assert cmake_calls(text, "project") == [["MSKAIExtension"]]
    sets = cmake_sets(text)
    for key in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL",
                "SCREENSHOTURLS", "DEPENDS"):
        assert sets.get(f"EXTENSION_{key}", [""])[0].strip(), f"EXTENSION_{key} is not set"
    assert ["Slicer", "REQUIRED"] in cmake_calls(text, "find_package")
    assert ["${Slicer_USE_FILE}"] in cmake_calls(text, "include")
    subdirs = [args[0] for args in cmake_calls(text, "add_subdirectory")]
    assert sorted(subdirs) == sorted(MODULE_DIRS)
    assert all((REPO / d / "CMakeLists.txt").is_file() for d in subdirs)
    includes = cmake_calls(text, "include")
    assert ["${Slicer_EXTENSION_GENERATE_CONFIG}"] in includes
    assert includes[-1] == ["${Slicer_EXTENSION_CPACK}"], "ExtensionCPack must come last"


# --- (b) module CMakeLists ---------------------------------------------------------------


@pytest.mark.parametrize("folder", sorted(MODULE_DIRS))
def test_module_cmakelists_lists_every_file(folder):
    path = REPO / folder
    text = cmake_text(path / "CMakeLists.txt")
    assert cmake_sets(text)["MODULE_NAME"] == [MODULE_DIRS[folder]]
    build = cmake_calls(text, "slicerMacroBuildScriptedModule")
    assert len(build) == 1 and build[0][:2] == ["NAME", "${MODULE_NAME}"]
    assert ["SCRIPT", "${MODULE_NAME}.py"] in cmake_calls(text, "slicer_add_python_unittest")
    scripts, resources = listed_files(path)
    have_scripts, have_resources = existing_files(path)
    assert not have_scripts - scripts, "Python files missing from SCRIPTS"
    assert not have_resources - resources, "files missing from RESOURCES"
    assert all((path / f).is_file() for f in scripts | resources), "listed file does not exist"


def test_core_package_ships_inside_the_hidden_module():
    scripts, resources = listed_files(REPO / "MSKAIExtension")
    core = REPO / "MSKAIExtension" / "mskai"
    assert {p.relative_to(core.parent).as_posix() for p in core.rglob("*.py")
            if "__pycache__" not in p.parts} <= scripts
    assert {"mskai/__init__.py", "mskai/config.py", "mskai/diagnostics.py"} <= scripts
    assert "Resources/requirements.txt" in resources


def configure_against_stub_slicer(tmp_path, slicer_version: str) -> subprocess.CompletedProcess:
    """Real CMake over the lists, with a stub Slicer that checks every listed file exists."""
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "Empty.cmake").write_text("")
    (stub / "SlicerConfig.cmake").write_text(f"""
set(Slicer_VERSION {slicer_version})
set(Slicer_USE_FILE {stub}/Empty.cmake)
set(Slicer_EXTENSION_GENERATE_CONFIG {stub}/Empty.cmake)
set(Slicer_EXTENSION_CPACK {stub}/Empty.cmake)
function(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(MY "WITH_GENERIC_TESTS" "NAME" "SCRIPTS;RESOURCES" ${{ARGN}})
  foreach(f ${{MY_SCRIPTS}} ${{MY_RESOURCES}})
    if(NOT EXISTS ${{CMAKE_CURRENT_SOURCE_DIR}}/${{f}})
      message(FATAL_ERROR "${{MY_NAME}}: missing ${{f}}")
    endif()
  endforeach()
  list(LENGTH MY_SCRIPTS n)
  message(STATUS "module ${{MY_NAME}} scripts=${{n}}")
endfunction()
function(slicer_add_python_unittest)
endfunction()
""")
    return subprocess.run(
        ["cmake", "-S", str(REPO), "-B", str(tmp_path / "build"), f"-DSlicer_DIR={stub}",
         "-DBUILD_TESTING=ON"], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_cmake_configures_against_a_stub_slicer(tmp_path):
    result = configure_against_stub_slicer(tmp_path, "5.10.0")
    assert result.returncode == 0, result.stdout + result.stderr
    built = set(re.findall(r"module (\w+) scripts=", result.stdout))
    assert built == set(MODULE_DIRS.values())


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_cmake_refuses_a_slicer_older_than_5_10(tmp_path):
    """Slicer 5.8 ships Python 3.9; the modules need Slicer 5.10's Python 3.12."""
    result = configure_against_stub_slicer(tmp_path, "5.8.1")
    assert result.returncode != 0
    assert "needs 3D Slicer 5.10 or newer" in result.stderr


def test_extension_urls_point_at_files_in_the_repository():
    """The icon and screenshot URLs of the extension page name files that exist here."""
    sets = cmake_sets(cmake_text(REPO / "CMakeLists.txt"))
    prefix = "https://raw.githubusercontent.com/MSKAI/SlicerMSKAI/main/"
    urls = sets["EXTENSION_ICONURL"] + sets["EXTENSION_SCREENSHOTURLS"][0].split()
    assert len(urls) >= 3
    for url in urls:
        assert url.startswith(prefix)
        assert (REPO / url.removeprefix(prefix)).is_file(), url


def test_slicer_side_code_needs_nothing_newer_than_python_3_12():
    """vermin reads every module file; Slicer 5.10 embeds Python 3.12."""
    folders = [str(REPO / d) for d in ("MSKAIExtension", *FEATURE_MODULES)]
    vermin = str(Path(sys.executable).with_name("vermin"))
    result = subprocess.run(
        [vermin, "--no-tips", "--violations", "--eval-annotations", "-t=3.12-", *folders],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


# --- (c) UI files ------------------------------------------------------------------------

UI_USERS = {
    **{f"{m}/{m}.py": f"{m}/Resources/UI/{m}.ui" for m in FEATURE_MODULES},
    "MSKAIExtension/MSKAI.py": "MSKAIExtension/Resources/UI/MSKAISettings.ui",
    "MSKAIExtension/MSKAILib/settings_panel.py": "MSKAIExtension/Resources/UI/MSKAISettings.ui",
}


@pytest.mark.parametrize("source", sorted(UI_USERS))
def test_ui_has_every_widget_the_code_uses(source):
    used = ui_names_used(REPO / source)
    assert used, f"{source} never uses self.ui"
    missing = used - set(ui_widgets(REPO / UI_USERS[source]))
    assert not missing, f"{UI_USERS[source]} lacks {sorted(missing)}"


@pytest.mark.parametrize("module", FEATURE_MODULES)
def test_ui_has_every_widget_the_shared_module_widget_uses(module):
    """MSKAILib/module_widget.py drives the same controls in every module's UI."""
    used = ui_names_used(REPO / "MSKAIExtension/MSKAILib/module_widget.py")
    assert {"applyButton", "cancelButton", "progressBar", "remeasureButton"} <= used
    missing = used - set(ui_widgets(REPO / module / "Resources" / "UI" / f"{module}.ui"))
    assert not missing, f"{module}.ui lacks {sorted(missing)}"


@pytest.mark.parametrize("module", FEATURE_MODULES)
def test_module_ui_is_complete_and_bound(module):
    path = REPO / module / "Resources" / "UI" / f"{module}.ui"
    root = ET.parse(path).getroot()
    assert root.findtext("class") == module
    widgets = ui_widgets(path)
    classes = {name: w.get("class") for name, w in widgets.items()}
    assert classes[module] == "qMRMLWidget"
    for name, cls in {"inputSelector": "qMRMLNodeComboBox",
                      "outputSegmentationSelector": "qMRMLNodeComboBox",
                      "mergePolicyComboBox": "QComboBox", "applyButton": "QPushButton",
                      "cancelButton": "QPushButton", "progressBar": "QProgressBar",
                      "resultsTableView": "qMRMLTableView"}.items():
        assert classes.get(name) == cls, name
    merge = [i.findtext("property/string") for i in widgets["mergePolicyComboBox"].iter("item")]
    assert merge == ["Replace", "Fill empty only", "Skip edited segments"]
    # Every custom class is declared, and every MRML widget gets the scene.
    declared = {c.findtext("class") for c in root.iter("customwidget")}
    assert {c for c in classes.values() if not c.startswith("Q")} <= declared
    scene_receivers = {c.findtext("receiver") for c in root.iter("connection")
                       if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"}
    mrml = {n for n, c in classes.items() if c.startswith(("qMRML", "qSlicer")) and n != module}
    assert mrml <= scene_receivers, f"no setMRMLScene for {sorted(mrml - scene_receivers)}"
    # SlicerParameterName properties name fields of the parameter node dataclass.
    bound = {w.get("name"): p.findtext("string") for w in widgets.values()
             for p in w.findall("property") if p.get("name") == "SlicerParameterName"}
    fields = parameter_fields(REPO / module / f"{module}Lib" / "parameters.py",
                              f"{module}ParameterNode")
    assert set(bound.values()) <= fields
    assert {"inputVolume", "outputSegmentation", "mergePolicy"} <= set(bound.values())


def test_module_specific_inputs():
    fd = ui_widgets(REPO / "FractureDetect/Resources/UI/FractureDetect.ui")
    assert fd["roiSelector"].get("class") == "qMRMLNodeComboBox"
    assert fd["candidateList"].get("class") == "QListWidget"
    cq = ui_widgets(REPO / "CartilageQuant/Resources/UI/CartilageQuant.ui")
    assert cq["thicknessMethodComboBox"].get("class") == "QComboBox"
    ts = ui_widgets(REPO / "TumorSeg/Resources/UI/TumorSeg.ui")
    for name in ("positiveClicksWidget", "negativeClicksWidget"):
        assert ts[name].get("class") == "qSlicerSimpleMarkupsWidget"
    margin = ts["marginSpinBox"]
    value = [p.findtext("double") for p in margin.findall("property") if p.get("name") == "value"]
    assert value == ["10.0"]


def test_settings_ui_parses():
    widgets = ui_widgets(REPO / "MSKAIExtension/Resources/UI/MSKAISettings.ui")
    assert widgets["modelDirPathLineEdit"].get("class") == "ctkPathLineEdit"
    devices = [i.findtext("property/string") for i in widgets["deviceComboBox"].iter("item")]
    from mskai.config import DEVICES

    assert tuple(devices) == DEVICES


# --- (d) imports -------------------------------------------------------------------------


def slicer_side_files() -> list[Path]:
    files = [REPO / "MSKAIExtension" / "MSKAI.py", *(REPO / "MSKAIExtension/MSKAILib").glob("*.py")]
    for module in FEATURE_MODULES:
        files += [REPO / module / f"{module}.py", *(REPO / module / f"{module}Lib").glob("*.py")]
    return files


@pytest.mark.parametrize("path", slicer_side_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_slicer_side_files_import_nothing_heavy_at_top_level(path):
    heavy = {n for n in top_level_imports(path) if matches(n, HEAVY)}
    assert not heavy, f"{path.name} imports {sorted(heavy)} at import time"


#: Shared files the module files may import at start-up; they import only what is allowed.
STARTUP_SAFE = {"MSKAILib.module_widget": "MSKAIExtension/MSKAILib/module_widget.py"}


@pytest.mark.parametrize("path", [*(f"{m}/{m}.py" for m in FEATURE_MODULES),
                                  "MSKAIExtension/MSKAI.py", *STARTUP_SAFE.values()])
def test_module_files_import_only_slicer_and_stdlib(path):
    """The files Slicer imports at start-up: nothing beyond Slicer, VTK, Qt and stdlib, and
    the start-up-safe widget base (itself held to the same rule)."""
    allowed = {"slicer", "vtk", "qt", "ctk", *sys.stdlib_module_names}
    imports = {n for n in top_level_imports(REPO / path)
               if not any(n == m or n.startswith(m + ".") for m in STARTUP_SAFE)}
    assert {n.split(".")[0] for n in imports} <= allowed, sorted(imports)


def test_core_never_imports_slicer_at_top_level():
    core = REPO / "MSKAIExtension" / "mskai"
    offenders = {}
    for path in core.rglob("*.py"):
        rel = path.relative_to(core)
        if rel.parts[0] in ("slicer_io", "slicer_io.py") or "__pycache__" in rel.parts:
            continue
        bad = {n for n in top_level_imports(path) if matches(n, SLICER_ONLY)}
        if bad:
            offenders[rel.as_posix()] = sorted(bad)
    assert not offenders


def test_import_checker_sees_what_it_must(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\ntry:\n    import torch\nexcept ImportError:\n    pass\n"
                      "from mskai.inference import run\n\ndef f():\n    import monai\n")
    names = top_level_imports(sample)
    assert {"os", "torch", "mskai.inference"} <= names and "monai" not in names


# --- (e) catalog entry -------------------------------------------------------------------


def test_catalog_entry():
    entry = json.loads((REPO / "MSKAIExtension.json").read_text())
    required = {"$schema", "build_dependencies", "build_subdirectory", "category",
                "scm_revision", "scm_url", "tier"}
    assert required <= set(entry)
    assert "slicer-extension-catalog-entry-schema" in entry["$schema"]
    assert entry["scm_url"].startswith("https://")
    assert entry["tier"] in (1, 3, 5)
    sets = cmake_sets(cmake_text(REPO / "CMakeLists.txt"))
    assert entry["category"] == sets["EXTENSION_CATEGORY"][0]
    assert entry["build_dependencies"] == sets["EXTENSION_DEPENDS"][0].split()


# --- (f) settings --------------------------------------------------------------------------


def test_settings_round_trip(tmp_path):
    from mskai.config import Settings, load_settings, save_settings

    path = tmp_path / "nested" / "settings.json"
    assert load_settings(path, env={}) == Settings()  # no file: defaults
    settings = Settings(device="CUDA", model_dir=tmp_path / "models")
    assert settings.device == "cuda"
    save_settings(settings, path)
    assert json.loads(path.read_text()) == {"device": "cuda", "model_dir": str(tmp_path / "models")}
    assert load_settings(path, env={}) == settings


def test_settings_default_to_the_home_folder(tmp_path, monkeypatch):
    from mskai.config import load_settings, save_settings, settings_path

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MSKAI_DEVICE", raising=False)
    monkeypatch.delenv("MSKAI_MODEL_DIR", raising=False)
    assert settings_path() == tmp_path / ".mskai" / "settings.json"
    settings = load_settings()
    assert settings.model_dir == tmp_path / ".mskai" / "models"
    assert save_settings(settings) == settings_path()


def test_env_overrides(tmp_path):
    from mskai.config import Settings, load_settings, save_settings

    path = save_settings(Settings(device="cpu", model_dir=tmp_path / "a"), tmp_path / "s.json")
    env = {"MSKAI_DEVICE": "cuda", "MSKAI_MODEL_DIR": str(tmp_path / "b")}
    assert load_settings(path, env=env) == Settings(device="cuda", model_dir=tmp_path / "b")
    assert load_settings(path, env={"MSKAI_DEVICE": "auto"}).model_dir == tmp_path / "a"
    assert load_settings(path, env=env, use_env=False).device == "cpu"


def test_bad_settings_raise_input_error(tmp_path):
    from mskai.config import Settings, load_settings
    from mskai.errors import InputError

    with pytest.raises(InputError, match="auto, cpu, cuda"):
        Settings(device="tpu")
    with pytest.raises(InputError, match="MSKAI_DEVICE"):
        load_settings(tmp_path / "none.json", env={"MSKAI_DEVICE": "gpu0"})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        load_settings(bad, env={})
    bad.write_text('{"device": "quantum"}')
    with pytest.raises(InputError):
        load_settings(bad, env={})


# --- (g) diagnostics -----------------------------------------------------------------------


def test_diagnostics_versions_and_missing_packages(tmp_path):
    import numpy

    import mskai
    from mskai.config import Settings
    from mskai.diagnostics import NOT_INSTALLED, collect_diagnostics, format_diagnostics

    settings = Settings(device="cpu", model_dir=tmp_path)
    info = collect_diagnostics(settings, packages=["numpy", "mskai_no_such_package"],
                               include_device=False)
    versions = info["versions"]
    assert versions["mskai"] == mskai.__version__
    assert versions["numpy"] == numpy.__version__
    assert versions["mskai_no_such_package"] == NOT_INSTALLED
    assert versions["Slicer"].startswith("not running in Slicer")
    assert info["paths"]["model_dir"] == str(tmp_path) and info["paths"]["model_dir_exists"]
    assert info["device"] == {"requested": "cpu"}
    json.dumps(info)  # JSON-ready
    text = format_diagnostics(info)
    assert f"numpy: {numpy.__version__}" in text
    assert f"mskai_no_such_package: {NOT_INSTALLED}" in text


def test_diagnostics_default_packages_and_device(tmp_path):
    from mskai.config import Settings
    from mskai.diagnostics import NOT_INSTALLED, collect_diagnostics

    info = collect_diagnostics(Settings(device="cpu", model_dir=tmp_path / "absent"))
    versions = info["versions"]
    assert {"torch", "monai", "SimpleITK", "Slicer"} <= set(versions)
    for name in ("SimpleITK", "monai"):  # installed in the project's environment
        assert versions[name] != NOT_INSTALLED
    assert info["paths"]["model_dir_exists"] is False
    assert info["device"]["requested"] == "cpu" and info["device"]["resolved"] == "cpu"


def test_verify_models_command_targets_the_contract_cli(tmp_path):
    from mskai.config import Settings
    from mskai.diagnostics import verify_models_command

    command, env = verify_models_command(Settings(device="cpu", model_dir=tmp_path))
    assert command[1:] == ["-m", "mskai", "models", "verify"]
    assert env["MSKAI_MODEL_DIR"] == str(tmp_path)
    first = env["PYTHONPATH"].split(os.pathsep)[0]
    assert (Path(first) / "mskai" / "__init__.py").is_file()
