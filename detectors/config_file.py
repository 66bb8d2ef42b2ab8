"""Reading a YAML configuration file and saying, in plain sentences, everything that is wrong with it.

Shared by the detector and the alerting configs. Every problem is one ``(location, message)``
pair: the location is the dotted path of the key (``overrides.1.detectors.task_budget.ceiling_usd``)
or ``<file>`` / ``<root>`` / ``line L, column C`` for the file as a whole; the message is a sentence
without pydantic's jargon or URL, with a "did you mean" for a misspelled key or value. Every problem
is collected in one pass: the fields pydantic checks and the checks across fields that a model's
``problems`` function makes over the raw mapping.

>>> suggest("runaway", ["runaway_task", "fan_out"])
" (did you mean 'runaway_task'?)"
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

__all__ = ["CONSISTENCY", "ConfigError", "describe", "load_yaml_model", "read_yaml_mapping", "suggest"]

#: the pydantic error type of a check across fields that a model validator raises; the loader
#: reports the same check from the raw mapping, with its location, instead
CONSISTENCY = "config_consistency"

ModelT = TypeVar("ModelT", bound=BaseModel)
Problems = list[tuple[str, str]]


class ConfigError(ValueError):
    """A configuration file that cannot be used; ``errors`` holds ``(location, message)`` pairs."""

    def __init__(self, path: str, errors: list[tuple[str, str]]) -> None:
        self.path = path
        self.errors = errors
        lines = "\n".join(f"  {loc}: {msg}" for loc, msg in errors)
        super().__init__(f"{path}: {len(errors)} error(s)\n{lines}")


def consistency_error(problems: Problems) -> PydanticCustomError:
    """The error a model validator raises for checks across fields (``problems`` non-empty)."""
    text = "; ".join(f"{loc}: {msg}" for loc, msg in problems)
    return PydanticCustomError(CONSISTENCY, text)


def suggest(word: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``word``, or ``""``."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def known_names(what: str, names: tuple[str, ...], known: Sequence[str]) -> tuple[str, ...]:
    """``names`` when every one is in ``known``; else ``ValueError`` naming the unknown ones, each
    with its "did you mean", and the known ones when some has no close match."""
    unknown = [n for n in names if n not in known]
    if unknown:
        said = ", ".join(f"{n!r}{suggest(n, known)}" for n in unknown)
        listed = "" if all(suggest(n, known) for n in unknown) else f"; known: {', '.join(known)}"
        raise ValueError(f"unknown {what} {said}{listed}")
    return names


def read_yaml_mapping(path: str | Path, sections: str, *, empty_ok: bool = False) -> dict[str, Any]:
    """The mapping a YAML file holds, or a :class:`ConfigError` saying in one line why not: unreadable,
    not text (a binary file), not YAML (with the line and column), or not a mapping of ``sections``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise ConfigError(str(path), [("<file>", "is a directory, not a YAML file")]) from None
    except OSError as exc:
        raise ConfigError(str(path), [("<file>", f"cannot read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path), [("<file>", f"not a YAML file: byte {exc.start} is not UTF-8 text (a binary file?)")]
        ) from None
    if "\x00" in text:
        raise ConfigError(str(path), [("<file>", "not a YAML file: it holds NUL bytes (a binary file?)")])
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<file>"
        raise ConfigError(str(path), [(where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")]) from None
    if raw is None and empty_ok:
        raw = {}
    if not isinstance(raw, dict):
        what = "nothing" if raw is None else _kind(raw, article=True)
        raise ConfigError(str(path), [("<root>", f"not a config file: it holds {what}, not a mapping of {sections}")])
    return raw


def load_yaml_model(
    path: str | Path,
    model: type[ModelT],
    sections: str,
    *,
    empty_ok: bool = False,
    problems: Callable[[Mapping[str, Any]], Problems] | None = None,
) -> ModelT:
    """``model`` validated from the YAML mapping in ``path``, or one :class:`ConfigError` with every
    problem: the file's (see :func:`read_yaml_mapping`), every field's, and ``problems(raw)``, the
    checks across fields, made on the raw mapping so they are reported even when a field is bad."""
    raw = read_yaml_mapping(path, sections, empty_ok=empty_ok)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        across = problems(raw) if problems is not None else []
        errors = describe(exc, model, drop_consistency=bool(across))
        errors += [p for p in across if p not in errors]
        lines = _lines(Path(path))
        errors.sort(key=lambda e: _line(lines, e[0]))  # in the order of the file (stable)
        raise ConfigError(str(path), errors) from None


def _line(lines: dict[str, int], where: str) -> int:
    """The line of ``where``, or of its nearest ancestor in the file (a missing key: its mapping's)."""
    while where not in lines and "." in where:
        where = where.rsplit(".", 1)[0]
    return lines.get(where, 1 << 30)


def _lines(path: Path) -> dict[str, int]:
    """The line of every key and list item in the (already parsed) YAML file, by dotted location."""
    out: dict[str, int] = {}

    def walk(node: yaml.Node, where: str) -> None:
        out.setdefault(where or "<root>", node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = f"{where}.{key.value}" if where else str(key.value)
                out[name] = key.start_mark.line + 1
                walk(value, name)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{where}.{i}")

    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, ValueError, yaml.YAMLError):
        return out
    if root is not None:
        walk(root, "")
    return out


def describe(exc: ValidationError, model: type[BaseModel], *, drop_consistency: bool = False) -> Problems:
    """Each of pydantic's errors as ``(dotted location, plain sentence)``."""
    out: Problems = []
    for err in exc.errors(include_url=False):
        if drop_consistency and err["type"] == CONSISTENCY:
            continue
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        where = ".".join(str(p) for p in loc) or "<root>"
        pair = (where, _sentence(err, model, loc))
        if pair not in out:
            out.append(pair)
    return out


def _sentence(err: Any, model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    got = f" (got {_show(value)})"
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        allowed = [f.alias or n for n, f in parent.model_fields.items()] if parent is not None else []
        what = "detector" if parent is not None and parent.__name__.endswith("DetectorSettings") else "key"
        hint = suggest(loc[-1], allowed)
        if hint or not allowed:
            return f"unknown {what} {str(loc[-1])!r}{hint}"
        return f"unknown {what} {str(loc[-1])!r}; allowed: {', '.join(allowed)}"
    if kind == "missing":
        return "is required"
    if kind in ("literal_error", "enum"):
        options = [o.strip(" '") for o in ctx.get("expected", "").replace(" or ", ", ").split(",") if o.strip()]
        return f"{_show(value)} is not one of {', '.join(options)}{suggest(value, options)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {"greater_than": "more than", "greater_than_equal": "at least", "less_than": "less than"}
        bound = next(iter(ctx.values()), "?")
        bound = f"{bound:g}" if isinstance(bound, float) else bound
        return f"must be {words.get(kind, 'at most')} {bound}{got}"
    if kind in ("float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"):
        noun = "a whole number" if kind.startswith("int") else "a number"
        return f"must be {noun}{got}"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false{got}"
    if kind in ("string_type",):
        return f"must be text{got}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping (key: value), not {_kind(value, article=True)}"
    if kind in ("tuple_type", "list_type", "set_type"):
        return f"must be a list, not {_kind(value, article=True)}"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty" if ctx.get("min_length") == 1 else f"is too short: at least {ctx.get('min_length')}"
    if kind in ("too_long", "string_too_long"):
        return f"is too long: at most {ctx.get('max_length')}"
    if kind == "string_pattern_mismatch":
        return f"does not match the pattern {ctx.get('pattern')}{got}"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return str(err["msg"]).replace("Input should be", "must be").replace("Input should", "must")


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model of the mapping at ``loc`` inside ``model``, if that is a model."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        cls = _model_in(current)
        if cls is None:
            return None
        field = next((f for n, f in cls.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return None
        current = field.annotation
    return _model_in(current)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (``X``, ``X | None``, ``tuple[X, ...]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _kind(value: object, *, article: bool = False) -> str:
    """What a YAML value is, in words: ``mapping``, ``list``, ``text``, ``number``..."""
    name = {dict: "mapping", list: "list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )
    return f"a {name}" if article and name in ("mapping", "list", "number") else name


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str | int | float | bool) or value is None else _kind(value)
    return text if len(text) <= 60 else text[:57] + "..."

