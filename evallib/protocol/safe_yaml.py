r"""Reading params files that may come from anyone (a collaborator's pull request) in bounded time and memory.

A params file is small, flat YAML. Everything else is refused before it can cost
anything: files over :data:`MAX_PARAMS_BYTES`, text that is not UTF-8, anchors and
aliases (a 1.4 KB "billion laughs" file expands without end), nesting deeper than
:data:`MAX_DEPTH`, more than :data:`MAX_NODES` values, duplicate keys (YAML keeps
the last silently), non-text keys and lone surrogates (``"\ud800"``), which no file
or page can hold. Refusals happen while the YAML is composed, before any value is
built, so a hostile file costs milliseconds. Error messages never quote more than
:data:`SHOWN_CHARS` characters of a value.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent, MappingStartEvent, ScalarEvent, SequenceStartEvent

from evallib.errors import ParamsError

#: Largest params file read (the committed ones are under 2 KB).
MAX_PARAMS_BYTES = 64 * 1024
#: Deepest nesting (a params file is a mapping holding lists and one data_source mapping: depth 3).
MAX_DEPTH = 6
#: Most values (scalars, lists and mappings) in one file.
MAX_NODES = 5_000
#: Characters of a value quoted in an error message.
SHOWN_CHARS = 60


def shorten(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages."""
    text = repr(value) if not isinstance(value, str) or len(value) <= 4 * limit else repr(value[: 4 * limit])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int = 200) -> str:
    """Plain text cut to ``limit`` characters, for error messages."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Refused(yaml.YAMLError):
    """A structure params files may not use (raised while composing)."""


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing aliases, anchors, deep nesting, huge documents and duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        mark = getattr(event, "start_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        if isinstance(event, AliasEvent) or (
            isinstance(event, ScalarEvent | SequenceStartEvent | MappingStartEvent) and event.anchor is not None
        ):
            raise _Refused(f"uses a YAML anchor or alias (& or *){where}; write each value out in full")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _Refused(f"holds more than {MAX_NODES} values; a params file is a short list of fields")
        nests = isinstance(event, SequenceStartEvent | MappingStartEvent)
        if nests:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nests deeper than {MAX_DEPTH} levels{where}; params files are flat")
        try:
            return super().compose_node(parent, index)
        finally:
            if nests:
                self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise _Refused(f"has a key {shorten(key)} that is not text (line {key_node.start_mark.line + 1})")
            if key in seen:
                raise _Refused(
                    f"sets field {shorten(key)} twice (line {key_node.start_mark.line + 1}); keep one of them"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_text(value: Any, path: str = "") -> str | None:
    """The first place holding a string that cannot be written as UTF-8 (a lone surrogate), or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "a value"
        return None
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((f"[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for k, v in items:
        where = _check_text(k, path) or _check_text(v, f"{path}.{k}" if path and isinstance(k, str) else str(k))
        if where:
            return where
    return None


#: Files parsed in this process, by their bytes: a batch parses every params file before its workers fork, and
#: each site's notebook reads its own again (the same bytes, parsed once; a copy is returned each time).
_PARSED: dict[bytes, Any] = {}
_PARSED_MOST = 1024


def parse_params_text(data: bytes, source: str) -> Any:
    """Parse the bytes of a params file with every bound above; raise :class:`ParamsError` naming ``source``."""
    if data in _PARSED:
        return copy.deepcopy(_PARSED[data])
    value = _parse(data, source)
    if len(_PARSED) < _PARSED_MOST:
        _PARSED[data] = copy.deepcopy(value)
    return value


def _parse(data: bytes, source: str) -> Any:
    if len(data) > MAX_PARAMS_BYTES:
        raise ParamsError(
            f"{source}: the params file is {len(data):,} bytes, more than the {MAX_PARAMS_BYTES:,} allowed; "
            "a protocol is a short list of fields (put long explanations in a separate document)"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{source}: the params file is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    loader = _BoundedLoader(text)
    try:
        value = loader.get_single_data()
    except _Refused as exc:
        raise ParamsError(f"{source}: the params file {exc}") from None
    except RecursionError:
        raise ParamsError(f"{source}: the params file nests too deeply; params files are flat") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise ParamsError(f"{source}: not valid YAML{where}: {clip(str(problem), 120)}") from None
    finally:
        loader.dispose()
    bad = _check_text(value)
    if bad is not None:
        raise ParamsError(
            f"{source}: field {shorten(bad)} holds an invalid character (a lone surrogate such as \\ud800); "
            "remove the escape"
        )
    return value


def read_params_file(path: Path, source: str | None = None) -> Any:
    """Read and parse one params file (a regular file of at most :data:`MAX_PARAMS_BYTES`)."""
    source = source or str(path)
    try:
        if not path.exists():
            raise ParamsError(f"{source}: cannot read the params file (it does not exist)")
        if not path.is_file():
            raise ParamsError(f"{source}: cannot read the params file (not a regular file)")
        with open(path, "rb") as fh:
            data = fh.read(MAX_PARAMS_BYTES + 1)
    except OSError as exc:
        raise ParamsError(f"{source}: cannot read the params file ({exc.strerror or type(exc).__name__})") from None
    return parse_params_text(data, source)
