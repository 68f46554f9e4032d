"""Reading and checking a pyradiomics parameter set before pyradiomics sees it.

- The file is at most :data:`MAX_PARAMS_BYTES` (a parameter file is a few hundred bytes).
- It is parsed as YAML 1.2 (JSON is YAML) with ruamel's safe loader, the parser pykwalify
  uses, so values mean what pyradiomics would read. YAML anchors and aliases are refused
  before anything is built: nested aliases ("billion laughs") expand to gigabytes.
- Every setting is checked against pyradiomics' own schema (``paramSchema.yaml``) for its
  type and range, so the user gets one line naming the setting and what it must be, instead
  of pykwalify's multi-line log. Numbers must be real numbers: pykwalify takes a string such
  as ``"25"`` for a float, which pyradiomics then cannot compute with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from mskai.errors import InputError

MAX_PARAMS_BYTES = 64 * 1024
SECTIONS = ("setting", "voxelSetting", "imageType", "featureClass")
FORMAT_HINT = "see mskai/radiomics/default_params.yaml for the format"


def read_params_file(path: Path) -> dict[str, Any]:
    """The parameter mapping of a YAML or JSON file; InputError (one line) when it is not."""
    name = path.name
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"the radiomics parameter file {name} cannot be read "
                         f"({exc.strerror}); check the path and its permissions") from None
    if size > MAX_PARAMS_BYTES:
        raise InputError(f"the radiomics parameter file {name} is {size:,} bytes, more than "
                         f"the {MAX_PARAMS_BYTES // 1024} KiB a parameter file needs; give "
                         f"the right file ({FORMAT_HINT})")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"the radiomics parameter file {name} is not UTF-8 text; give a "
                         f"YAML or JSON file ({FORMAT_HINT})") from None
    except OSError as exc:
        raise InputError(f"the radiomics parameter file {name} cannot be read "
                         f"({exc.strerror}); check the path and its permissions") from None
    data = parse_yaml(text, f"the radiomics parameter file {name}")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InputError(f"the radiomics parameter file {name} is not a valid pyradiomics "
                         f"parameter set (it holds a {_kind(data)}, not a mapping with "
                         f"setting / imageType / featureClass); {FORMAT_HINT}")
    return dict(data)


def parse_yaml(text: str, what: str) -> Any:
    """Safe YAML 1.2 with anchors and aliases refused before anything is constructed."""
    from ruamel.yaml import YAML
    from ruamel.yaml.events import AliasEvent

    yaml = YAML(typ="safe", pure=True)
    try:
        for event in yaml.parse(text):
            if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
                raise InputError(f"{what} uses YAML anchors or aliases (&name / *name), "
                                 "which are not allowed in a parameter file; write each "
                                 "value out")
        return yaml.load(text)
    except InputError:
        raise
    except RecursionError:
        raise InputError(f"{what} is nested too deeply to be a pyradiomics parameter set; "
                         f"{FORMAT_HINT}") from None
    except Exception as exc:  # ruamel raises many unrelated types for malformed text
        raise InputError(f"{what} is not a valid pyradiomics parameter set (not valid YAML: "
                         f"{first_line(exc)}); {FORMAT_HINT}") from None


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's text (library messages span lines)."""
    for line in str(exc).splitlines():
        line = line.strip().lstrip("<").strip()
        if line:
            return line.rstrip(":")
    return type(exc).__name__


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """pyradiomics' parameter schema (trusted package data; it uses an anchor itself)."""
    from radiomics import getParameterValidationFiles
    from ruamel.yaml import YAML

    schema_file, _ = getParameterValidationFiles()
    with open(schema_file, encoding="utf-8") as handle:
        return YAML(typ="safe", pure=True).load(handle)


def check_params(params: Mapping[str, Any], what: str) -> None:
    """Raise InputError naming the first setting of the wrong type or out of range."""
    if not isinstance(params, Mapping):
        raise InputError(f"{what} is not a valid pyradiomics parameter set (a {_kind(params)}, "
                         f"not a mapping); {FORMAT_HINT}")
    for key in params:
        if key not in SECTIONS:
            raise InputError(f"{what} is not a valid pyradiomics parameter set: unknown section "
                             f"{key!r} (allowed: {', '.join(SECTIONS)}); {FORMAT_HINT}")
    rules = schema()["mapping"]
    setting_rules = rules["setting"]["mapping"]
    _check_settings(params.get("setting"), setting_rules, "setting", what)
    _check_settings(params.get("voxelSetting"), rules["voxelSetting"]["mapping"],
                    "voxelSetting", what)
    image_types = params.get("imageType")
    if image_types is not None:
        if not isinstance(image_types, Mapping):
            raise _type_error(what, "imageType", image_types,
                              "a mapping of image types such as Original: {}")
        for name, custom in image_types.items():
            _check_settings(custom, setting_rules, f"imageType {name}", what)
    classes = params.get("featureClass")
    if classes is not None:
        if not isinstance(classes, Mapping):
            raise _type_error(what, "featureClass", classes,
                              "a mapping of feature classes such as firstorder:")
        for name, features in classes.items():
            if features is not None and not (isinstance(features, list)
                                             and all(isinstance(f, str) for f in features)):
                raise _type_error(what, f"featureClass {name}", features,
                                  "empty (all features) or a list of feature names")


def _check_settings(settings: Any, rules: Mapping[str, Any], where: str, what: str) -> None:
    if settings is None:
        return
    if not isinstance(settings, Mapping):
        raise _type_error(what, where, settings, "a mapping of setting: value")
    for key, value in settings.items():
        rule = rules.get(key)
        if rule is None:
            raise InputError(f"{what} is not a valid pyradiomics parameter set: {where} has "
                             f"an unknown setting {key!r}; check its spelling ({FORMAT_HINT})")
        if "seq" in rule:
            if value is None and key == "resampledPixelSpacing":
                continue  # "not set" = no resampling
            item_rule = rule["seq"][0]
            expected = f"a list of {_describe(item_rule, plural=True)}"
            if not isinstance(value, list) or not value:
                raise _type_error(what, f"{where} {key}", value, expected)
            for item in value:
                if not _fits(item, item_rule):
                    raise _type_error(what, f"{where} {key}", value, expected)
            if key == "resampledPixelSpacing" and len(value) != 3:
                raise _type_error(what, f"{where} {key}", value,
                                  "three spacings in mm (x, y, z; 0 keeps that axis)")
        elif not _fits(value, rule):
            raise _type_error(what, f"{where} {key}", value, _describe(rule))


def _fits(value: Any, rule: Mapping[str, Any]) -> bool:
    kind = rule.get("type", "any")
    if kind == "any":
        return True  # interpolator, weightingNorm: pyradiomics' own check functions decide
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str) and value in rule.get("enum", [value])
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:  # float
        ok = isinstance(value, int | float) and not isinstance(value, bool) \
            and math.isfinite(value)
    if not ok:
        return False
    bounds = rule.get("range", {})
    return not (("min" in bounds and value < bounds["min"])
                or ("min-ex" in bounds and value <= bounds["min-ex"])
                or ("max" in bounds and value > bounds["max"])
                or ("max-ex" in bounds and value >= bounds["max-ex"]))


def _describe(rule: Mapping[str, Any], plural: bool = False) -> str:
    kind = rule.get("type", "any")
    if kind == "str" and "enum" in rule:
        return "one of " + ", ".join(repr(v) for v in rule["enum"])
    names = ({"int": "integers", "float": "numbers", "bool": "true or false",
              "str": "texts"} if plural else
             {"int": "an integer", "float": "a number", "bool": "true or false",
              "str": "a text"})
    text = names.get(kind, "values" if plural else "a value")
    bounds = rule.get("range", {})
    parts = [f">= {bounds['min']}" if "min" in bounds else "",
             f"> {bounds['min-ex']}" if "min-ex" in bounds else "",
             f"<= {bounds['max']}" if "max" in bounds else "",
             f"< {bounds['max-ex']}" if "max-ex" in bounds else ""]
    parts = [p for p in parts if p]
    return f"{text} {' and '.join(parts)}" if parts else text


def _type_error(what: str, setting: str, value: Any, expected: str) -> InputError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InputError(f"{what} is not a valid pyradiomics parameter set: {setting} is "
                      f"{shown} ({_kind(value)}), but must be {expected}; {FORMAT_HINT}")


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "mapping"
    return type(value).__name__
