"""The registry's search language: the run filter language with bare attribute names.

``name = 'churn'``, ``name ILIKE '%churn%'``, ``tags.team = 'pricing'`` for registered models;
also ``run_id``, ``source_path``, ``version_number`` (an integer) and the timestamps for model
versions, combined with AND, OR and parentheses. Parsing reuses the run search parser
(``cairn.tracking.search``); only how identifiers and integer attributes read differs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cairn.errors import SearchSyntaxError
from cairn.tracking.search import (
    Comparison,
    Entity,
    Expr,
    Identifier,
    Op,
    OrderBy,
    _Kind,
    _Parser,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "MODEL_VERSIONS",
    "REGISTERED_MODELS",
    "Language",
    "parse_registry_filter",
    "parse_registry_order_by",
]

_INT64 = 2**63
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INTEGER_OPS = frozenset({Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE, Op.IN, Op.NOT_IN})
_TAG_PREFIXES = frozenset({"tags", "tag"})
_ATTRIBUTE_PREFIXES = frozenset({"attributes", "attribute", "attr"})


@dataclass(frozen=True, slots=True)
class Language:
    """What one registry search may filter and sort on."""

    what: str
    strings: frozenset[str]
    integers: frozenset[str]
    sortable: frozenset[str]
    aliases: tuple[tuple[str, str], ...] = ()

    @property
    def attributes(self) -> frozenset[str]:
        return self.strings | self.integers

    def canonical(self, name: str) -> str:
        lowered = name.lower()
        return dict(self.aliases).get(lowered, lowered)


_TIMESTAMPS = frozenset({"creation_timestamp", "last_updated_timestamp"})
_TIMESTAMP_ALIASES = (
    ("timestamp", "last_updated_timestamp"),
    ("creation_time", "creation_timestamp"),
)

REGISTERED_MODELS = Language(
    what="registered models",
    strings=frozenset({"name"}),
    integers=_TIMESTAMPS,
    sortable=frozenset({"name"}) | _TIMESTAMPS,
    aliases=_TIMESTAMP_ALIASES,
)
MODEL_VERSIONS = Language(
    what="model versions",
    strings=frozenset({"name", "run_id", "source_path"}),
    integers=frozenset({"version_number"}) | _TIMESTAMPS,
    sortable=frozenset({"name", "version_number"}) | _TIMESTAMPS,
    aliases=(*_TIMESTAMP_ALIASES, ("version", "version_number"), ("source", "source_path")),
)


class _RegistryParser(_Parser):
    """The run parser, reading ``name`` where runs need ``attributes.name``."""

    def __init__(self, text: str, language: Language) -> None:
        super().__init__(text)
        self.language = language

    def _unknown(self, written: str) -> str:
        keys = ", ".join(sorted(self.language.attributes))
        return (
            f"unknown field {written!r} for {self.language.what}; use one of {keys} or tags.<key>"
        )

    def parse_identifier(self) -> Identifier:
        token = self.peek()
        if token.kind is _Kind.WORD and token.upper not in ("AND", "OR", "NOT", "IN", "IS"):
            name = self.language.canonical(token.text)
            if name not in self.language.attributes:
                self.fail(self._unknown(token.text))
            self.advance()
            return Identifier(Entity.ATTRIBUTE, name)
        if token.kind is _Kind.IDENT:
            prefix = token.prefix.lower()
            if prefix in _TAG_PREFIXES or prefix in _ATTRIBUTE_PREFIXES:
                if not token.value:
                    self.fail(f"expected a name after {token.text!r}")
                if prefix in _TAG_PREFIXES:
                    self.advance()
                    return Identifier(Entity.TAG, token.value)
                name = self.language.canonical(token.value)
                if name not in self.language.attributes:
                    self.fail(self._unknown(token.text))
                self.advance()
                return Identifier(Entity.ATTRIBUTE, name)
            self.fail(self._unknown(token.text))
        self.fail(f"expected a field such as name or tags.<key>, got {token.describe()}")

    def parse_comparison(self) -> Comparison:
        start = self.index
        ident_token = self.peek()
        ident = self.parse_identifier()
        if ident.entity is not Entity.ATTRIBUTE or ident.key not in self.language.integers:
            self.index = start  # strings and tags compare as in run search
            return super().parse_comparison()
        op_token = self.peek()
        op = self.parse_operator(ident_token)
        if op not in _INTEGER_OPS:
            self.fail(
                f"{op.value} does not apply to {ident.key}; use =, !=, <, <=, >, >=, IN or NOT IN",
                op_token,
            )
        if op not in (Op.IN, Op.NOT_IN):
            return Comparison(ident, op, self._integer(ident))
        if self.peek().kind is not _Kind.LPAREN:
            self.fail(f"expected '(' after {op.value}, got {self.peek().describe()}")
        self.advance()
        values = [self._integer(ident)]
        while self.peek().kind is _Kind.COMMA:
            self.advance()
            values.append(self._integer(ident))
        if self.peek().kind is not _Kind.RPAREN:
            self.fail(f"expected ',' or ')' in the IN list, got {self.peek().describe()}")
        self.advance()
        return Comparison(ident, op, tuple(values))

    def _integer(self, ident: Identifier) -> int:
        token = self.peek()
        # A quoted integer is accepted too: clients often quote every value.
        text = token.value if token.kind is _Kind.STRING else token.text
        if token.kind not in (_Kind.NUMBER, _Kind.STRING) or not _INTEGER.fullmatch(text.strip()):
            self.fail(f"{ident.key} values are integers, got {token.describe()}")
        number = int(text)
        if not -_INT64 <= number < _INT64:
            self.fail(f"number {text} is out of range")
        self.advance()
        return number


def parse_registry_filter(text: str | None, language: Language) -> Expr | None:
    """The AST of a registry filter, or None when there is nothing to filter on.

    Raises:
        SearchSyntaxError: naming the position and what was expected.
    """
    if text is None or not text.strip():
        return None
    return _RegistryParser(text, language).parse_filter()


def parse_registry_order_by(clauses: Sequence[str] | None, language: Language) -> list[OrderBy]:
    """Order-by clauses such as ``name ASC`` or ``version_number DESC``."""
    if clauses is None:
        return []
    if isinstance(clauses, str):
        raise SearchSyntaxError("order_by must be a list of clauses, not one string")
    parsed = []
    for clause in clauses:
        order = _RegistryParser(clause, language).parse_order_by()
        if order.ident.entity is not Entity.ATTRIBUTE or order.ident.key not in language.sortable:
            keys = ", ".join(sorted(language.sortable))
            raise SearchSyntaxError(
                f"cannot order {language.what} by {clause.split()[0]!r}; use one of {keys}",
                clause,
                0,
            )
        parsed.append(order)
    return parsed
