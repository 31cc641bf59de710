"""Read a YAML flow safely into a validated Flow, or every located problem it has."""

from __future__ import annotations

import os
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from routing.errors import FlowError, FlowInvalid, Path
from routing.field_problems import did_you_mean
from routing.flow import Flow, Key, LanguageCode, NodeId
from routing.flow import Node as FlowNode
from routing.validator import semantic_errors

MAX_FLOW_BYTES = 512 * 1024
MAX_ALIASES = 200
MAX_DEPTH = 64
MAX_VALUES = 100_000

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "null", "bool", "int", "float", "timestamp")}
_INT = re.compile(r"^-?[0-9]+$")
_FLOAT = re.compile(r"^-?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@dataclass
class LocatedTree:
    """Plain data read from a flow file, with the 1-based line and column of each value and key."""

    data: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path) -> tuple[int, int]:
        """Where the value at `path` starts, or its nearest existing parent's value."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.values:
                return self.values[path[:end]]
        return (1, 1)

    def locate_key(self, path: Path) -> tuple[int, int]:
        """Where the key of `path` is written; the value's place for list items and the root."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.keys:
                return self.keys[path[:end]]
            if path[:end] in self.values:
                return self.values[path[:end]]
        return (1, 1)


def parse_flow(text: str, filename: str) -> Flow:
    """The validated Flow in `text`; FlowInvalid with every problem found otherwise."""
    flow, errors = _check(text, filename)
    if errors or flow is None:
        raise FlowInvalid(errors)
    return flow


def check_flow(text: str, filename: str) -> list[FlowError]:
    """Every problem in the flow `text`, in file order; empty when it is valid."""
    return _check(text, filename)[1]


def load_flow_file(path: str | os.PathLike[str]) -> Flow:
    """Read a UTF-8 flow file and parse it; errors name the path as given."""
    filename = os.fspath(path)
    return parse_flow(read_settings_file(path, MAX_FLOW_BYTES, _too_large(filename)), filename)


def read_settings_file(path: str | os.PathLike[str], max_bytes: int,
                       too_large: FlowError | None = None) -> str:
    """The UTF-8 text of a flow or settings file, at most `max_bytes`; FlowInvalid, located
    where it can be, when it is unreadable, too large or not UTF-8."""
    filename = os.fspath(path)
    try:
        with open(path, "rb") as stream:
            raw = stream.read(max_bytes + 1)
    except OSError as exc:
        raise FlowInvalid([FlowError(filename, 1, 1, f"cannot read the file: {exc}")]) from exc
    if len(raw) > max_bytes:
        raise FlowInvalid([too_large or FlowError(
            filename, 1, 1, f"the file is larger than {max_bytes // 1024} KiB")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start].decode("utf-8-sig", errors="replace")
        line, column = _line_column(prefix, len(prefix))
        error = FlowError(filename, line, column, "the file is not valid UTF-8")
        raise FlowInvalid([error]) from None


def compose_tree(text: str, filename: str) -> LocatedTree:
    """The located plain-data tree of a YAML flow; FlowInvalid on any YAML-level problem."""
    tree, errors = _read_tree(text, filename)
    if errors or tree is None:
        raise FlowInvalid(errors)
    return tree


def _check(text: str, filename: str) -> tuple[Flow | None, list[FlowError]]:
    tree, errors = _read_tree(text, filename)
    if tree is None:
        return None, sorted(errors)
    if not isinstance(tree.data, dict):
        line, column = tree.locate(())
        found = "a list" if isinstance(tree.data, list) else "a single value"
        message = (
            "a flow must be a mapping of keys such as 'name', 'languages', 'start' and 'nodes'; "
            f"this document is {found}"
        )
        errors.append(FlowError(filename, line, column, message))
        return None, sorted(errors)
    try:
        flow = Flow.model_validate(tree.data)
    except ValidationError as exc:
        errors.extend(_schema_errors(exc, tree, filename))
        return None, sorted(set(errors))
    errors.extend(semantic_errors(flow, filename, tree.locate, tree.locate_key))
    return (None if errors else flow), sorted(set(errors))


# --- YAML to located plain data -------------------------------------------------


class _TreeProblem(Exception):
    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _FlowYamlLoader(yaml.SafeLoader):
    """SafeLoader composing nodes with YAML 1.2-like scalars, capping aliases, size and depth."""

    yaml_implicit_resolvers: dict[Any, Any] = {}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_count = 0
        self.expanded = 0  # values in the tree once every alias is written out
        self.sizes: dict[int, int] = {}  # id(node) -> its expanded size
        self.open_anchors: list[str] = []  # one entry per open list or mapping ("" if unnamed)
        self.alias_marks: dict[tuple[int, int], Any] = {}  # (parent, index) -> where '*x' is

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self.check_alias(event)
            node = super().compose_node(parent, index)
            if parent is not None and index is not None:
                self.alias_marks[_slot(parent, index)] = event.start_mark
            return node
        if len(self.open_anchors) >= MAX_DEPTH:
            raise _TreeProblem(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
        self.expanded += 1
        self.open_anchors.append(getattr(event, "anchor", None) or "")
        try:
            node = super().compose_node(parent, index)
        finally:
            self.open_anchors.pop()
        assert node is not None
        children = node.value if isinstance(node, SequenceNode) else []
        if isinstance(node, MappingNode):
            children = [child for pair in node.value for child in pair]
        self.sizes[id(node)] = 1 + sum(self.sizes[id(child)] for child in children)
        return node

    def check_alias(self, event: AliasEvent) -> None:
        """Refuse self-containing aliases, too many aliases, and aliases that expand too far."""
        self.alias_count += 1
        if event.anchor in self.open_anchors:
            raise _TreeProblem(
                event.start_mark, f"alias '*{event.anchor}' refers to a value that contains it"
            )
        if self.alias_count > MAX_ALIASES:
            raise _TreeProblem(
                event.start_mark,
                f"too many aliases (more than {MAX_ALIASES}); write some values out instead",
            )
        target = self.anchors.get(event.anchor)
        if target is not None:
            self.expanded += self.sizes[id(target)]
            if self.expanded > MAX_VALUES:
                raise _TreeProblem(
                    event.start_mark,
                    f"alias '*{event.anchor}' makes the flow expand to more than {MAX_VALUES} "
                    "values; write values out instead of nesting aliases",
                )


def _slot(parent: Node, index: Any) -> tuple[int, int]:
    """Identifies one child of a composed node: a list index or a mapping key node."""
    return id(parent), index if isinstance(index, int) else id(index)


for _tag, _pattern, _first in (
    ("bool", r"^(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", _INT.pattern, "-0123456789"),
    ("float", _FLOAT.pattern, "-.0123456789"),
    ("timestamp", _DATE.pattern, "0123456789"),
):
    _FlowYamlLoader.add_implicit_resolver(f"{_TAG}{_tag}", re.compile(_pattern), list(_first))


def _read_tree(text: str, filename: str) -> tuple[LocatedTree | None, list[FlowError]]:
    if len(text) > MAX_FLOW_BYTES or len(text.encode(errors="surrogatepass")) > MAX_FLOW_BYTES:
        return None, [_too_large(filename)]
    loader: _FlowYamlLoader | None = None
    try:
        loader = _FlowYamlLoader(text)
        root = loader.get_single_node()
    except _TreeProblem as exc:
        return None, [_at_mark(filename, exc.mark, exc.message)]
    except yaml.MarkedYAMLError as exc:
        return None, [_yaml_error(filename, exc)]
    except yaml.reader.ReaderError as exc:
        line, column = _line_column(text, exc.position)
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return None, [FlowError(filename, line, column, f"character {char} is not allowed in YAML")]
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        return None, [FlowError(filename, 1, 1, "the flow file is empty")]
    converter = _Converter(filename, loader.alias_marks)
    try:
        data = converter.convert(root, (), 0)
    except _TreeProblem as exc:
        return None, [*converter.errors, _at_mark(filename, exc.mark, exc.message)]
    return LocatedTree(data, converter.values, converter.keys), converter.errors


class _Converter:
    """Turns composed nodes into plain data, recording where every value and key starts."""

    def __init__(self, filename: str, alias_marks: dict[tuple[int, int], Any]) -> None:
        self.filename = filename
        self.alias_marks = alias_marks
        self.values: dict[Path, tuple[int, int]] = {}
        self.keys: dict[Path, tuple[int, int]] = {}
        self.errors: list[FlowError] = []
        self.active: set[int] = set()

    def error(self, mark: yaml.Mark, message: str) -> None:
        self.errors.append(_at_mark(self.filename, mark, message))

    def convert(self, node: Node, path: Path, depth: int, mark: Any = None) -> Any:
        """Plain data of `node`; `mark` is where an alias wrote it, if it was one."""
        if depth > MAX_DEPTH or id(node) in self.active:
            raise _TreeProblem(node.start_mark, f"nested more than {MAX_DEPTH} levels deep")
        self.values[path] = _position(mark or node.start_mark)
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if node.tag not in (f"{_TAG}map", f"{_TAG}seq"):
            self.error(node.start_mark, _unsupported_tag(node.tag))
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [
                    self.convert(item, (*path, i), depth + 1, self.alias_marks.get(_slot(node, i)))
                    for i, item in enumerate(node.value)
                ]
            assert isinstance(node, MappingNode)
            return self.mapping(node, path, depth)
        finally:
            self.active.discard(id(node))

    def mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.error(key_node.start_mark, "a key must be plain text, not a list or mapping")
                continue
            key = key_node.value
            if key == "<<" and key_node.style is None:
                self.error(
                    key_node.start_mark, "merge keys ('<<') are not supported; write the keys out"
                )
                continue
            if key in result:
                first = self.keys[(*path, key)][0]
                self.error(key_node.start_mark, f"duplicate key '{key}' (first at line {first})")
                continue
            self.keys[(*path, key)] = _position(key_node.start_mark)
            alias_mark = self.alias_marks.get(_slot(node, key_node))
            result[key] = self.convert(value_node, (*path, key), depth + 1, alias_mark)
        return result

    def scalar(self, node: ScalarNode) -> Any:
        tag, value = node.tag, node.value
        if tag not in _SCALAR_TAGS:
            self.error(node.start_mark, _unsupported_tag(tag))
            return value
        kind = tag.removeprefix(_TAG)
        if kind == "null":
            return None
        if kind == "bool" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "int" and _INT.match(value):
            return int(value)
        if kind == "float" and _FLOAT.match(value):
            return float(value)
        if kind == "timestamp" and _DATE.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                return value  # the schema reports it where a date is expected
        if kind != "str":
            self.error(node.start_mark, f"'{value}' is not a valid {kind}")
        return value


def _unsupported_tag(tag: str) -> str:
    shown = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
    return f"unsupported tag '{shown}'; flows are plain YAML without tags"


def _position(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _at_mark(filename: str, mark: yaml.Mark, message: str) -> FlowError:
    return FlowError(filename, mark.line + 1, mark.column + 1, message)


def _yaml_error(filename: str, exc: yaml.MarkedYAMLError) -> FlowError:
    mark = exc.problem_mark or exc.context_mark
    message = (exc.problem or exc.context or "invalid YAML").removeprefix("but ")
    if exc.context and exc.problem and exc.context_mark is not None:
        message = f"{message} ({exc.context} at line {exc.context_mark.line + 1})"
    if mark is None:
        return FlowError(filename, 1, 1, message)
    return _at_mark(filename, mark, message)


def _line_column(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def _too_large(filename: str) -> FlowError:
    return FlowError(
        filename,
        1,
        1,
        f"the flow file is larger than {MAX_FLOW_BYTES // 1024} KiB; "
        "split it or remove unused nodes",
    )


# --- schema errors to located, readable messages --------------------------------


def _type_tag(annotation: Any) -> str | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        info = annotation.model_fields.get("type")
        if info is not None:
            return typing.get_args(info.annotation)[0]
    return None


_NODE_TYPES: tuple[str, ...] = tuple(
    str(_type_tag(member)) for member in typing.get_args(typing.get_args(FlowNode)[0])
)
_PATTERN_HINTS = {
    typing.get_args(NodeId)[1].pattern: "a node id: lowercase letters, digits and '_', "
    "starting with a letter",
    typing.get_args(LanguageCode)[1].pattern: "a language code of 2 or 3 lowercase letters "
    "such as 'en'",
    typing.get_args(Key)[1].pattern: "a single key: 0-9, * or #",
    Flow.model_fields["name"].metadata[0].pattern: "a flow name: lowercase letters, digits, "
    "'-' and '_'",
}


def _schema_errors(exc: ValidationError, tree: LocatedTree, filename: str) -> list[FlowError]:
    """One located, readable FlowError per pydantic error (union alternatives merged)."""
    merged: dict[tuple[int, int, Path], list[tuple[str, str]]] = {}
    errors: list[FlowError] = []
    for error in exc.errors():
        path, is_key = _data_path(error["loc"], error["type"], tree.data)
        kind = error["type"]
        if kind == "missing":
            parent = path[:-1]
            line, column = tree.locate_key(parent)
            message = f"{_describe(parent, tree.data, with_type=True)} is missing '{path[-1]}'"
        elif kind == "extra_forbidden":
            line, column = tree.locate_key(path)
            message = _unknown_key(path, tree.data)
        elif (
            kind in ("union_tag_invalid", "union_tag_not_found", "model_attributes_type")
            and len(path) == 2
            and path[0] == "nodes"
        ):
            line, column, message = _bad_node(path, kind, tree)
        else:
            line, column = tree.locate_key(path) if is_key else tree.locate(path)
            shown = path[:-1] if is_key else path  # a key's problem belongs to its mapping
            merged.setdefault((line, column, shown), []).append(_plain_message(error, is_key))
            continue
        errors.append(FlowError(filename, line, column, message))
    for (line, column, path), messages in merged.items():
        dotted = ".".join(str(p) for p in path) or "flow"
        errors.append(FlowError(filename, line, column, f"{dotted}: {_join(messages)}"))
    return errors


def _data_path(loc: tuple[str | int, ...], kind: str, data: Any) -> tuple[Path, bool]:
    """The loc's path through the data, without union tags; and whether it names a key."""
    path: list[str | int] = []
    current = data
    tagged = False
    for index, element in enumerate(loc):
        last = index == len(loc) - 1
        if element == "[key]":
            return tuple(path), True
        if (
            not tagged
            and len(path) == 2
            and path[0] == "nodes"
            and isinstance(current, dict)
            and current.get("type") == element
        ):
            tagged = True  # once: a queue node's field 'queue' follows its tag 'queue'
            continue  # discriminator tag of a node
        in_dict = isinstance(current, dict) and element in current
        in_list = isinstance(current, list) and isinstance(element, int) and element < len(current)
        if in_dict or in_list:
            path.append(element)
            current = current[element]
        elif last and kind in ("missing", "extra_forbidden"):
            path.append(element)
        # anything else is the name of a union alternative: not part of the file
    return tuple(path), False


def _describe(path: Path, data: Any, *, with_type: bool = False) -> str:
    """How an admin would name the thing at `path`."""
    if not path:
        return "the flow"
    if path[0] == "nodes" and len(path) >= 2:
        node = data.get("nodes", {}).get(path[1]) if isinstance(data.get("nodes"), dict) else None
        kind = node.get("type") if isinstance(node, dict) else None
        name = f"node '{path[1]}'"
        if len(path) == 2:
            return f"{name} ({kind})" if with_type and isinstance(kind, str) else name
        if len(path) == 4 and path[2] == "options":
            return f"{name} option '{path[3]}'"
        return f"{name} {'.'.join(str(p) for p in path[2:])}"
    if path[0] == "calendars" and len(path) >= 2:
        rest = ".".join(str(p) for p in path[2:])
        return f"calendar '{path[1]}'" + (f" {rest}" if rest else "")
    if path[0] == "rotas" and len(path) >= 2:
        rest = ".".join(str(p) for p in path[2:])
        return f"rota '{path[1]}'" + (f" {rest}" if rest else "")
    if path[0] == "voices" and len(path) == 2:
        return f"voice '{path[1]}'"
    return ".".join(str(p) for p in path)


def _unknown_key(path: Path, data: Any) -> str:
    parent, key = path[:-1], str(path[-1])
    where = "at the top level" if not parent else f"in {_describe(parent, data)}"
    allowed = _allowed_keys(parent, data)
    hint = did_you_mean(key, allowed)
    if not hint and allowed:
        hint = f"; expected one of: {', '.join(allowed)}"
    return f"unknown key '{key}' {where}{hint}"


def _allowed_keys(path: Path, data: Any) -> list[str]:
    """Field names of the model found at `path`, following the schema and node types."""
    annotation: Any = Flow
    current = data
    for element in (*path, None):
        annotation = _resolve(annotation, current)
        if element is None:
            break
        current = current.get(element) if isinstance(current, dict) else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            info = _fields_by_key(annotation).get(str(element))
            annotation = info.annotation if info else None
        elif typing.get_origin(annotation) in (dict, list):
            annotation = typing.get_args(annotation)[-1]
        else:
            return []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(_fields_by_key(annotation))
    return []


def _fields_by_key(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields by the key written in YAML (its alias, such as 'from', if it has one)."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _resolve(annotation: Any, value: Any) -> Any:
    """Strip Annotated and pick the union member that fits `value` (by its node type)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [m for m in typing.get_args(annotation) if m is not type(None)]
            wanted = value.get("type") if isinstance(value, dict) else None
            annotation = next((m for m in members if _type_tag(m) == wanted), members[0])
        else:
            return annotation


def _bad_node(path: Path, kind: str, tree: LocatedTree) -> tuple[int, int, str]:
    node_id = path[1]
    expected = ", ".join(_NODE_TYPES)
    node = tree.data["nodes"][node_id]
    if kind == "union_tag_invalid":
        line, column = tree.locate((*path, "type"))
        tag = str(node["type"])
        return (
            line,
            column,
            (
                f"node '{node_id}' has unknown type '{tag}'"
                f"{did_you_mean(tag, _NODE_TYPES)}; expected one of: {expected}"
            ),
        )
    line, column = tree.locate_key(path)
    if kind == "union_tag_not_found" and isinstance(node, dict):
        return line, column, f"node '{node_id}' has no 'type'; expected one of: {expected}"
    return line, column, f"node '{node_id}' must be a mapping with a 'type' ({expected})"


def _plain_message(error: Any, is_key: bool) -> tuple[str, str]:
    """Pydantic's message made readable, and a suffix showing the value that was given."""
    value = error["input"]
    pattern = (error.get("ctx") or {}).get("pattern")
    if error["type"] == "string_pattern_mismatch" and pattern in _PATTERN_HINTS:
        return f"{'key' if is_key else 'value'} '{value}' is not {_PATTERN_HINTS[pattern]}", ""
    if is_key:
        return f"key '{value}': {error['msg']}", ""
    if not isinstance(value, str | int | float | bool | date) and value is not None:
        return str(error["msg"]), ""
    shown = repr(value) if isinstance(value, str) else str(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    hint = (
        "; put the value in quotes"
        if error["type"] == "string_type" and not isinstance(value, str)
        else ""
    )
    return str(error["msg"]), f" (got {shown}){hint}"


def _join(messages: list[tuple[str, str]]) -> str:
    """Messages for one value; union alternatives read 'Input should be A or B'."""
    unique = list(dict.fromkeys(text for text, _ in messages))
    prefix = "Input should be "
    if all(text.startswith(prefix) for text in unique):
        joined = prefix + " or ".join(text.removeprefix(prefix) for text in unique)
    else:
        joined = "; ".join(unique)
    return joined + messages[0][1]
