"""YAML files validated by pydantic, with errors that name the line.

Operators edit the roster and the policy by hand; "line 14: people[2].roles[0]: unknown role
'admn'" is the message they need, not a traceback.
"""

from __future__ import annotations

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


def _construct(node: yaml.Node, loc: Location, lines: dict[Location, int]) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = (
                key_node.value
                if key_node.tag == "tag:yaml.org,2002:str"
                else yaml.safe_load(yaml.serialize(key_node))
            )
            result[key] = _construct(value_node, (*loc, key), lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    # Scalars: let the safe loader resolve ints, bools, dates the usual way.
    return yaml.safe_load(yaml.serialize(node))


def parse_with_lines(text: str, path: str) -> tuple[Any, dict[Location, int]]:
    """Parse YAML text into plain data plus a map from each value's location to its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise FileError(path, [f"{where}{reason}"]) from None
    lines: dict[Location, int] = {}
    if node is None:
        return None, lines
    return _construct(node, (), lines), lines


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


def load_model(
    model: type[ModelT], path: str | Path, context: dict[str, Any] | None = None
) -> ModelT:
    """Read and validate a YAML file as `model`; raise FileError with line numbers."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise FileError(name, [exc.strerror or str(exc)]) from None
    return load_model_text(model, text, name, context)


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
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise FileError(name, [exc.strerror or str(exc)]) from None
    data, lines = parse_with_lines(text, name)
    if data is None:
        raise FileError(name, ["the file is empty"])
    return data, lines


def problem_at(loc: Location, message: str, lines: dict[Location, int]) -> str:
    """Format one problem found after validation (cross-references) with its line."""
    line = _line_for(loc, lines)
    return f"{'line ' + str(line) + ': ' if line else ''}{_dotted(loc)}: {message}"
