"""YAML read as a node tree, so every validation error can name the file and the line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from cairn.errors import ProjectSpecError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Located", "load_yaml"]

_KINDS = {
    yaml.MappingNode: "a mapping",
    yaml.SequenceNode: "a list",
}


class Located:
    """One YAML node with its file and dotted path, for messages such as
    ``MLproject, line 7: entry_points.main.command: expected a string, got a list``."""

    def __init__(
        self, node: yaml.Node, file: Path, path: str, key: yaml.Node | None = None
    ) -> None:
        self.node = node
        self.file = file
        self.path = path
        self.key = key  # the mapping key this node is the value of

    @property
    def line(self) -> int:
        return int(self.node.start_mark.line) + 1

    def fail(self, message: str, at_key: bool = False) -> NoReturn:
        """Raise naming this node's line (or its key's: where a missing field belongs)."""
        where = f"{self.path}: " if self.path else ""
        node = self.key if at_key and self.key is not None else self.node
        line = int(node.start_mark.line) + 1
        raise ProjectSpecError(f"{self.file}, line {line}: {where}{message}")

    def expected(self, what: str) -> NoReturn:
        self.fail(f"expected {what}, got {self.describe()}")

    def describe(self) -> str:
        for kind, text in _KINDS.items():
            if isinstance(self.node, kind):
                return text
        value = self.value()
        return "nothing" if value is None else f"{type(value).__name__} {value!r}"

    def value(self) -> Any:
        """The plain Python value of this node (scalars as YAML types them)."""
        return yaml.SafeLoader("").construct_object(self.node, deep=True)

    def mapping(self, what: str = "a mapping") -> dict[str, Located]:
        if not isinstance(self.node, yaml.MappingNode):
            self.expected(what)
        out: dict[str, Located] = {}
        for key_node, value_node in self.node.value:
            key = Located(key_node, self.file, self.path).value()
            if not isinstance(key, str):
                Located(key_node, self.file, self.path).expected("a name as key")
            path = f"{self.path}.{key}" if self.path else key
            out[key] = Located(value_node, self.file, path, key_node)
        return out

    def sequence(self, what: str = "a list") -> list[Located]:
        if not isinstance(self.node, yaml.SequenceNode):
            self.expected(what)
        return [
            Located(item, self.file, f"{self.path}[{i}]") for i, item in enumerate(self.node.value)
        ]

    def string(self, what: str = "a string") -> str:
        if not isinstance(self.node, yaml.ScalarNode):
            self.expected(what)
        value = self.value()
        if not isinstance(value, str) or not value.strip():
            self.expected(what)
        return value

    def scalar_text(self, what: str) -> str:
        """A scalar as text (``0.1`` -> ``"0.1"``), as a command line would see it."""
        if not isinstance(self.node, yaml.ScalarNode):
            self.expected(what)
        value = self.value()
        if value is None or isinstance(value, (bytes, bytearray)):
            self.expected(what)
        if isinstance(value, bool):
            return str(value).lower()
        # The node's own text keeps what the author wrote (1e-3 stays 1e-3, not 0.001).
        return str(self.node.value) if isinstance(value, (int, float)) else str(value)

    def reject_unknown(self, keys: dict[str, Located], allowed: tuple[str, ...]) -> None:
        for key, located in keys.items():
            if key not in allowed:
                Located(located.node, self.file, located.path).fail(
                    f"unknown key; expected one of {', '.join(allowed)}"
                )


def load_yaml(path: Path) -> Located | None:
    """The document in ``path`` as a node tree; None for an empty file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectSpecError(f"Cannot read {path}: {exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ProjectSpecError(f"{path}{line}: not valid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ProjectSpecError(f"{path}: not valid YAML: {exc}") from exc
    return None if node is None else Located(node, path, "")
