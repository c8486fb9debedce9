"""YAML files validated by pydantic, with errors that name the line.

Operators edit the roster and the policy by hand; "line 14: people[2].roles[0]: unknown role
'admn'" is the message they need, not a traceback.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)
Location = tuple[str | int, ...]


class FileError(ValueError):
    """A file that cannot be used; `problems` holds one "line N: path: reason" per issue."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


# Values one file may hold once its aliases are expanded: a roster of tens of thousands of
# people is far below it; a few lines of aliases repeating aliases ("billion laughs") are not.
MAX_VALUES = 500_000
_YAML = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ = _YAML + "str", _YAML + "map", _YAML + "seq"


class _Unusable(Exception):
    """A node the file cannot use; becomes one "line N: reason" problem."""

    def __init__(self, node: yaml.Node, reason: str) -> None:
        super().__init__(reason)
        self.line = node.start_mark.line + 1
        self.reason = reason


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag


class _Builder:
    """Plain data from a composed YAML document, recording each value's line.

    Only what `yaml.safe_load` would build from a hand-written file, and refused with the
    line otherwise: tags other than YAML's own, lists or mappings used as keys, an alias
    inside the value it names (endless), a file that expands past MAX_VALUES.
    """

    def __init__(self) -> None:
        self.lines: dict[Location, int] = {}
        self.count = 0
        self.open: set[int] = set()  # the collections being built around the current node
        self.merger = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, loc: Location) -> Any:
        self.lines[loc] = node.start_mark.line + 1
        self.count += 1
        if self.count > MAX_VALUES:
            raise _Unusable(
                node,
                f"the file holds more than {MAX_VALUES:,} values once its aliases are expanded",
            )
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if id(node) in self.open:
            raise _Unusable(
                node, "an alias (*name) is used inside the value it names, which would never end"
            )
        expected = _MAP if isinstance(node, yaml.MappingNode) else _SEQ
        if node.tag != expected:
            raise _Unusable(node, f"the YAML tag {_tag_name(node.tag)!r} is not supported here")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            self.merger.flatten_mapping(node)  # `<<: *defaults` merge keys, as safe_load does
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise _Unusable(
                        key_node, "a key must be a single value, not a list or a mapping"
                    )
                key = key_node.value if key_node.tag == _STR else self._scalar(key_node)
                result[key] = self.build(value_node, (*loc, key))
            return result
        finally:
            self.open.discard(id(node))

    @staticmethod
    def _scalar(node: yaml.ScalarNode) -> Any:
        if not node.tag.startswith(_YAML):
            raise _Unusable(node, f"the YAML tag {node.tag!r} is not supported here")
        # Let the safe loader resolve ints, bools, dates the usual way.
        try:
            return yaml.safe_load(yaml.serialize(node))
        except yaml.YAMLError as exc:
            raise _Unusable(node, getattr(exc, "problem", None) or _first_line(exc)) from None
        except ValueError as exc:  # a date or time that does not exist: 2026-13-05, 25:00
            raise _Unusable(
                node, f"{node.value!r} is not a valid date or time ({_first_line(exc)})"
            ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def parse_with_lines(text: str, path: str) -> tuple[Any, dict[Location, int]]:
    """Parse YAML text into plain data plus a map from each value's location to its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None, {}
        builder = _Builder()
        return builder.build(node, ()), builder.lines
    except _Unusable as exc:
        raise FileError(path, [f"line {exc.line}: {exc.reason}"]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        reason = f"unacceptable character #x{exc.character:04x}: {exc.reason}"
        raise FileError(path, [f"line {line}: {reason}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        reason = getattr(exc, "problem", None) or _first_line(exc)
        raise FileError(path, [f"{where}{reason}"]) from None
    except RecursionError:
        raise FileError(path, ["values are nested too deeply"]) from None


def _line_for(loc: Location, lines: dict[Location, int]) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def _dotted(loc: Location) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def explain(exc: ValidationError, lines: dict[Location, int], path: str) -> FileError:
    """Turn a pydantic error into a FileError whose lines point into the file."""
    problems = []
    for error in exc.errors():
        loc = tuple(
            p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        line = _line_for(loc, lines)
        where = f"line {line}: " if line else ""
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}{_dotted(loc)}: {message}")
    return FileError(path, problems)


def read_text(path: str | Path) -> str:
    """A hand-edited file's text: UTF-8 (a UTF-8 byte-order mark is skipped); FileError,
    with the line, for a file that cannot be read or is in another encoding."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise FileError(name, [exc.strerror or str(exc)]) from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)):
        raise FileError(
            name,
            [
                "line 1: the file is UTF-16 or UTF-32 text (it starts with a byte-order mark); "
                "save it as UTF-8"
            ],
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise FileError(
            name,
            [f"line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"],
        ) from None


def load_model(
    model: type[ModelT], path: str | Path, context: dict[str, Any] | None = None
) -> ModelT:
    """Read and validate a YAML file as `model`; raise FileError with line numbers."""
    return load_model_text(model, read_text(path), str(path), context)


def load_model_text(
    model: type[ModelT], text: str, name: str, context: dict[str, Any] | None = None
) -> ModelT:
    """Validate YAML text as `model`; raise FileError with line numbers."""
    data, lines = parse_with_lines(text, name)
    if data is None:
        raise FileError(name, ["the file is empty"])
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise explain(exc, lines, name) from None


def read_with_lines(path: str | Path) -> tuple[Any, dict[Location, int]]:
    """Read a YAML file into plain data and its line map; FileError if unreadable."""
    name = str(path)
    data, lines = parse_with_lines(read_text(path), name)
    if data is None:
        raise FileError(name, ["the file is empty"])
    return data, lines


def problem_at(loc: Location, message: str, lines: dict[Location, int]) -> str:
    """Format one problem found after validation (cross-references) with its line."""
    line = _line_for(loc, lines)
    return f"{'line ' + str(line) + ': ' if line else ''}{_dotted(loc)}: {message}"
