"""Layering that matches the design: shipped code never imports the tests or the training
scripts, the demo does not go back through the command line, low layers do not import the
task or output layers, and ids / tags / statuses are named once (checked with ``ast``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORE = REPO / "MSKAIExtension" / "mskai"
SHIPPED_DIRS = ("MSKAIExtension", "FractureDetect", "CartilageQuant", "TumorSeg")
TRAINING_SCRIPTS = {p.stem for p in (REPO / "training").rglob("*.py")}
TEST_ONLY = {"Testing", "phantoms", "conftest", "mrml", "benchmarks",
             *(p.stem for p in (REPO / "Testing").glob("test_*.py"))}
LOW_LAYERS = ("segmentation", "measure", "interactive", "fracture")
HIGH_LAYERS = ("mskai.tasks", "mskai.cli", "mskai.commands", "mskai.results")


def shipped_files() -> list[Path]:
    files = []
    for folder in SHIPPED_DIRS:
        files += [p for p in (REPO / folder).rglob("*.py")
                  if "__pycache__" not in p.parts and not p.parts[-2].endswith(".egg-info")]
    return sorted(files)


def module_name(path: Path) -> str | None:
    """Dotted name of a core module (``mskai.tasks.crop``), None outside the core."""
    if CORE not in path.parents and path.parent != CORE:
        return None
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module the file imports anywhere (also inside functions); relative imports are
    resolved against the file's package."""
    package = (module_name(path) or "").split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[:len(package) - node.level + 1], *filter(None, [base])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def matches(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_shipped_code_never_imports_tests_or_training_scripts():
    forbidden = TEST_ONLY | TRAINING_SCRIPTS
    offenders = {}
    for path in shipped_files():
        bad = {n for n in imported_modules(path) if n.split(".")[0] in forbidden}
        if bad:
            offenders[rel(path)] = sorted(bad)
    assert not offenders


def test_shipped_code_does_not_put_the_checkout_on_sys_path():
    offenders = [rel(p) for p in shipped_files()
                 if "sys.path.insert" in p.read_text(encoding="utf-8")
                 or "sys.path.append" in p.read_text(encoding="utf-8")]
    assert not offenders


def test_demo_calls_the_tasks_not_the_command_line():
    imports = imported_modules(CORE / "demo.py")
    assert not {n for n in imports if matches(n, ("mskai.cli", "mskai.commands"))}
    assert any(matches(n, ("mskai.tasks",)) for n in imports)
    assert "mskai.results" in imports


@pytest.mark.parametrize("layer", LOW_LAYERS)
def test_low_layers_never_import_tasks_commands_or_writers(layer):
    offenders = {}
    for path in (CORE / layer).rglob("*.py"):
        bad = {n for n in imported_modules(path) if matches(n, HIGH_LAYERS)}
        if bad:
            offenders[rel(path)] = sorted(bad)
    assert not offenders


def test_import_scanner_sees_nested_and_relative_imports(tmp_path):
    assert "mskai.tasks.crop" in imported_modules(CORE / "tasks" / "crop.py") | {
        "mskai.tasks.crop"}
    assert "mskai.crop.padded_bbox" in imported_modules(CORE / "tasks" / "crop.py")
    sample = CORE / "phantoms" / "long_bone.py"  # ``from .grid import rotation``
    assert "mskai.phantoms.grid.rotation" in imported_modules(sample)
    nested = tmp_path / "nested.py"
    nested.write_text("def f():\n    import phantoms.long_bone\n    from Testing import x\n")
    assert {"phantoms.long_bone", "Testing"} <= imported_modules(nested)


# --- named constants ----------------------------------------------------------------------

#: literal -> the one module (relative to the repository) allowed to spell it out.
DEFINED_ONCE = {
    "ai_result": "MSKAIExtension/mskai/segments.py",
    "edited_by_hand": "MSKAIExtension/mskai/segments.py",
    "MSKAI.Status": "MSKAIExtension/mskai/segments.py",
    "MSKAI.Method": "MSKAIExtension/mskai/segments.py",
    "MSKAI.Version": "MSKAIExtension/mskai/segments.py",
    "MSKAI.Time": "MSKAIExtension/mskai/segments.py",
    "MSKAI.ModelId": "MSKAIExtension/mskai/segments.py",
    "MSKAI.ModelVersion": "MSKAIExtension/mskai/segments.py",
    "MSKAI.ModelSha256": "MSKAIExtension/mskai/segments.py",
    "MSKAI.Module": "MSKAIExtension/mskai/slicer_io/tags.py",
    "MSKAI.Fingerprint": "MSKAIExtension/mskai/slicer_io/tags.py",
    "MSKAI.BackupOf": "MSKAIExtension/mskai/slicer_io/tags.py",
    "safety_margin": "MSKAIExtension/mskai/terminology.py",
    "bone_fragment_": "MSKAIExtension/mskai/terminology.py",
    "bone": "MSKAIExtension/mskai/terminology.py",
    **dict.fromkeys(("femur", "tibia", "patella", "fibula", "femoral_cartilage",
                     "tibial_cartilage", "medial_tibial_cartilage", "lateral_tibial_cartilage",
                     "patellar_cartilage"), "MSKAIExtension/mskai/terminology.py"),
}
#: "bone" is also the ``bone`` field of a fracture entry (CONTRACT.md): as a dict key, an
#: index or a ``.get`` key it is that field name, not the segment id.
FIELD_NAMES = {"bone"}
#: ... and a plain word (the bone under a cartilage plate) in these files' messages.
BONE_AS_WORD = {"MSKAIExtension/mskai/measure/cartilage_surfaces.py"}
#: The segment id "tumor" is also the name of the ``mskai tumor`` command in these files.
TUMOR_AS_COMMAND = {"MSKAIExtension/mskai/cli.py", "MSKAIExtension/mskai/commands.py",
                    "MSKAIExtension/mskai/results/out_folder.py"}
#: Slicer self-tests inside the module files may spell ids out, as the pytest tests do.
SELF_TESTS = {"TumorSeg/TumorSeg.py", "FractureDetect/FractureDetect.py",
              "CartilageQuant/CartilageQuant.py"}


def string_literals(path: Path, field_names: set[str] = frozenset()) -> list[tuple[int, str]]:
    """(line, text) of every string constant except docstrings; f-string parts included.

    Constants in ``field_names`` are left out where they are dict keys, indexes or the key
    of a ``.get`` call.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(node.body[0].value) for node in ast.walk(tree)
               if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                             | ast.AsyncFunctionDef)
               and node.body and isinstance(node.body[0], ast.Expr)
               and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        keys = (node.keys if isinstance(node, ast.Dict)
                else [node.slice] if isinstance(node, ast.Subscript)
                else node.args[:1] if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                else [])
        skipped |= {id(key) for key in keys if isinstance(key, ast.Constant)
                    and key.value in field_names}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in skipped]


def test_ids_tags_and_statuses_are_spelled_out_only_where_defined():
    offenders = []
    for path in shipped_files():
        name = rel(path)
        for line, text in string_literals(path, FIELD_NAMES):
            for literal, home in DEFINED_ONCE.items():
                exact = (literal.endswith("_") and text.startswith(literal)) or text == literal
                word = literal == "bone" and name in BONE_AS_WORD
                if exact and name != home and name not in SELF_TESTS and not word:
                    offenders.append(f"{name}:{line}: {text!r}")
            if text == "tumor" and name not in {"MSKAIExtension/mskai/terminology.py",
                                                 *TUMOR_AS_COMMAND, *SELF_TESTS}:
                offenders.append(f"{name}:{line}: 'tumor'")
    assert not offenders, "use the named constant:\n" + "\n".join(offenders)


def test_constant_checker_sees_literals(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""doc "ai_result" is fine here."""\nX = {"MSKAI.Status": f"a{1}"}\n')
    assert (2, "MSKAI.Status") in string_literals(sample)
    assert all(text != '"ai_result"' for _, text in string_literals(sample))


def test_constant_checker_leaves_out_field_names_only_as_keys(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('X = {"bone": e["bone"], "b": e.get("bone", "bone")}\nY = ("bone",)\n')
    found = string_literals(sample, {"bone"})
    assert found.count((1, "bone")) == 1 and (2, "bone") in found
    assert string_literals(sample).count((1, "bone")) == 4
