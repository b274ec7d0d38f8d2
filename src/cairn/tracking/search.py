"""The run search language: a filter and order-by clauses parsed into a small typed AST.

Filter grammar (keywords case-insensitive, AND binds tighter than OR)::

    filter     := or_expr
    or_expr    := and_expr (OR and_expr)*
    and_expr   := primary (AND primary)*
    primary    := "(" or_expr ")" | comparison
    comparison := identifier ("=" | "!=" | "<" | "<=" | ">" | ">=") value
                | identifier [NOT] (LIKE | ILIKE) string
                | identifier [NOT] IN "(" value ("," value)* ")"
                | identifier IS [NOT] NULL
    identifier := entity "." (bare_key | `quoted key` | "quoted key")
    order_by   := identifier [ASC | DESC]

Metrics compare with numbers, params and tags with strings (``<`` and ``>`` compare strings
byte by byte). ``!=``, ``NOT LIKE`` and ``NOT IN`` match runs that have the key with another
value; ``IS NULL`` matches runs without the key. Strings use SQL quoting (``'it''s'``); in LIKE
patterns ``%`` and ``_`` are wildcards and a backslash escapes the next character.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, TypeAlias

from cairn.entities import LifecycleStage, RunStatus
from cairn.errors import SearchSyntaxError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ATTRIBUTES",
    "And",
    "Comparison",
    "Entity",
    "Expr",
    "Identifier",
    "Op",
    "Or",
    "OrderBy",
    "Scalar",
    "parse_filter",
    "parse_order_by",
]


class Entity(enum.StrEnum):
    METRIC = "metric"
    PARAM = "param"
    TAG = "tag"
    ATTRIBUTE = "attribute"


class Op(enum.StrEnum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    LIKE = "LIKE"
    ILIKE = "ILIKE"
    NOT_LIKE = "NOT LIKE"
    NOT_ILIKE = "NOT ILIKE"
    IN = "IN"
    NOT_IN = "NOT IN"
    IS_NULL = "IS NULL"
    IS_NOT_NULL = "IS NOT NULL"


Scalar: TypeAlias = str | int | float


@dataclass(frozen=True, slots=True)
class Identifier:
    """``metric``/``param``/``tag`` keys as written; attributes by canonical name (``run_id``)."""

    entity: Entity
    key: str


@dataclass(frozen=True, slots=True)
class Comparison:
    """``value`` is a tuple for IN/NOT IN, None for IS [NOT] NULL, otherwise a scalar."""

    ident: Identifier
    op: Op
    value: Scalar | tuple[Scalar, ...] | None


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]


Expr: TypeAlias = Comparison | And | Or


@dataclass(frozen=True, slots=True)
class OrderBy:
    ident: Identifier
    ascending: bool = True


_ENTITIES = {
    "metrics": Entity.METRIC,
    "metric": Entity.METRIC,
    "params": Entity.PARAM,
    "param": Entity.PARAM,
    "parameters": Entity.PARAM,
    "tags": Entity.TAG,
    "tag": Entity.TAG,
    "attributes": Entity.ATTRIBUTE,
    "attribute": Entity.ATTRIBUTE,
    "attr": Entity.ATTRIBUTE,
    "run": Entity.ATTRIBUTE,
}
_PLURAL = {Entity.METRIC: "metrics", Entity.PARAM: "params", Entity.TAG: "tags"}

_STRING_ATTRIBUTES = frozenset(
    {"run_id", "run_name", "status", "user_id", "artifact_uri", "lifecycle_stage", "experiment_id"}
)
_NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
_NULLABLE_ATTRIBUTES = frozenset({"end_time"})
ATTRIBUTES = _STRING_ATTRIBUTES | _NUMERIC_ATTRIBUTES
_ATTRIBUTE_ALIASES = {"created": "start_time", "run_uuid": "run_id", "name": "run_name"}
_ALLOWED_VALUES = {
    "status": tuple(sorted(s.value for s in RunStatus)),
    "lifecycle_stage": tuple(sorted(s.value for s in LifecycleStage)),
}

_COMPARE_OPS = {"=": Op.EQ, "!=": Op.NE, "<": Op.LT, "<=": Op.LE, ">": Op.GT, ">=": Op.GE}
_NUMBER_OPS = frozenset({*_COMPARE_OPS.values(), Op.IN, Op.NOT_IN})
_KEY_OPS = frozenset({Op.IS_NULL, Op.IS_NOT_NULL})
_LIKE_OPS = frozenset({Op.LIKE, Op.ILIKE, Op.NOT_LIKE, Op.NOT_ILIKE})
_STRING_ATTRIBUTE_OPS = frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN, *_LIKE_OPS})
_KEYWORDS = frozenset({"AND", "OR", "NOT", "LIKE", "ILIKE", "IN", "IS", "NULL", "ASC", "DESC"})
_EXPECTED_OPERATOR = "a comparison operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, IS)"

_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DIGITS = re.compile(r"[0-9]+")
_INT64 = 2**63
# Characters that end a bare word: operators, punctuation and the quotes.
_DELIMITERS = frozenset("=!<>(),'\"`")


class _Kind(enum.Enum):
    WORD = "word"  # a keyword or a bare name
    IDENT = "identifier"
    NUMBER = "number"
    STRING = "string"
    QUOTED_NAME = "quoted name"
    OPERATOR = "operator"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    END = "end"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    text: str  # as written, for messages
    pos: int
    value: str = ""  # string contents, or the key of an identifier
    prefix: str = ""  # the entity of an identifier, as written

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind is _Kind.WORD else ""

    def describe(self) -> str:
        return "the end of the input" if self.kind is _Kind.END else repr(self.text)


def _fail(message: str, text: str, position: int) -> NoReturn:
    raise SearchSyntaxError(message, text, position)


def _read_quoted(text: str, start: int, what: str) -> tuple[str, int]:
    """The contents of the quoted run at ``start`` (a doubled quote is one quote) and its end."""
    quote = text[start]
    parts: list[str] = []
    i = start + 1
    while True:
        j = text.find(quote, i)
        if j < 0:
            _fail(f"unterminated {what} (missing closing {quote})", text, start)
        parts.append(text[i:j])
        if text.startswith(quote, j + 1):
            parts.append(quote)
            i = j + 2
        else:
            return "".join(parts), j + 1


def _tokenize(text: str) -> list[_Token]:
    """Split ``text`` into tokens; identifiers and numbers are recognised here, keywords later."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "(),":
            kind = {"(": _Kind.LPAREN, ")": _Kind.RPAREN, ",": _Kind.COMMA}[ch]
            tokens.append(_Token(kind, ch, i))
            i += 1
        elif ch in "=!<>":
            j = i
            while j < n and text[j] in "=!<>":
                j += 1
            op = text[i:j]
            if op not in _COMPARE_OPS:
                _fail(f"unknown operator {op!r}; expected =, !=, <, <=, >, >=", text, i)
            tokens.append(_Token(_Kind.OPERATOR, op, i))
            i = j
        elif ch in "'\"`":
            kind = _Kind.QUOTED_NAME if ch == "`" else _Kind.STRING
            value, j = _read_quoted(text, i, "quoted name" if ch == "`" else "string")
            tokens.append(_Token(kind, text[i:j], i, value))
            i = j
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _DELIMITERS:
                j += 1
            word = text[i:j]
            if _NUMBER.fullmatch(word):
                tokens.append(_Token(_Kind.NUMBER, word, i))
            elif word.endswith(".") and j < n and text[j] in '`"' and word.count(".") == 1:
                key, j = _read_quoted(text, j, "quoted name")
                tokens.append(_Token(_Kind.IDENT, text[i:j], i, key, word[:-1]))
            elif "." in word:
                prefix, _, key = word.partition(".")
                tokens.append(_Token(_Kind.IDENT, word, i, key, prefix))
            else:
                tokens.append(_Token(_Kind.WORD, word, i))
            i = j
    tokens.append(_Token(_Kind.END, "", n))
    return tokens


class _Parser:
    """Recursive descent over the tokens of one filter or order-by clause."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind is not _Kind.END:
            self.index += 1
        return token

    def accept_word(self, *words: str) -> _Token | None:
        if self.peek().upper in words:
            return self.advance()
        return None

    def fail(self, message: str, token: _Token | None = None) -> NoReturn:
        _fail(message, self.text, (token or self.peek()).pos)

    def expect_end(self, what: str) -> None:
        if self.peek().kind is not _Kind.END:
            self.fail(f"unexpected {self.peek().describe()}; expected {what}")

    def parse_filter(self) -> Expr:
        expr = self.parse_or()
        if self.peek().kind is _Kind.RPAREN:
            self.fail("unexpected ')' without a matching '('")
        self.expect_end("AND, OR or the end of the filter")
        return expr

    def parse_or(self) -> Expr:
        operands = [self.parse_and()]
        while self.accept_word("OR"):
            operands.append(self.parse_and())
        return _combine(Or, operands)

    def parse_and(self) -> Expr:
        operands = [self.parse_primary()]
        while self.accept_word("AND"):
            operands.append(self.parse_primary())
        return _combine(And, operands)

    def parse_primary(self) -> Expr:
        if self.peek().kind is _Kind.LPAREN:
            opening = self.advance()
            expr = self.parse_or()
            if self.peek().kind is not _Kind.RPAREN:
                self.fail(
                    f"expected ')' to close the '(' at position {opening.pos}, "
                    f"got {self.peek().describe()}"
                )
            self.advance()
            return expr
        return self.parse_comparison()

    def parse_identifier(self) -> Identifier:
        token = self.peek()
        example = "such as metrics.mae, params.alpha, tags.team or attributes.status"
        if token.kind is _Kind.WORD and token.upper not in _KEYWORDS:
            name = token.text
            self.fail(
                f"{name!r} needs an entity prefix: metrics.{name}, params.{name}, "
                f"tags.{name} or attributes.{name}"
            )
        if token.kind is not _Kind.IDENT:
            self.fail(f"expected an identifier {example}, got {token.describe()}")
        entity = _ENTITIES.get(token.prefix.lower())
        if entity is None:
            self.fail(
                f"unknown entity {token.prefix!r} in {token.text!r}; "
                "expected metrics., params., tags. or attributes."
            )
        if not token.value:
            self.fail(f"expected a name after {token.text!r}")
        self.advance()
        if entity is not Entity.ATTRIBUTE:
            return Identifier(entity, token.value)
        name = token.value.lower()
        name = _ATTRIBUTE_ALIASES.get(name, name)
        if name not in ATTRIBUTES:
            self.fail(
                f"unknown attribute {token.value!r}; expected one of "
                + ", ".join(sorted(ATTRIBUTES)),
                token,
            )
        return Identifier(entity, name)

    def parse_comparison(self) -> Comparison:
        ident_token = self.peek()
        ident = self.parse_identifier()
        op_token = self.peek()
        op = self.parse_operator(ident_token)
        _check_operator(ident, op, op_token, self.text)
        value: Scalar | tuple[Scalar, ...] | None
        if op in _KEY_OPS:
            value = None
        elif op in (Op.IN, Op.NOT_IN):
            value = self.parse_list(ident, op_token)
        else:
            value = self.parse_value(ident, op, op_token)
        return Comparison(ident, op, value)

    def parse_operator(self, ident_token: _Token) -> Op:
        token = self.peek()
        if token.kind is _Kind.OPERATOR:
            self.advance()
            return _COMPARE_OPS[token.text]
        if self.accept_word("LIKE"):
            return Op.LIKE
        if self.accept_word("ILIKE"):
            return Op.ILIKE
        if self.accept_word("IN"):
            return Op.IN
        if self.accept_word("NOT"):
            if self.accept_word("LIKE"):
                return Op.NOT_LIKE
            if self.accept_word("ILIKE"):
                return Op.NOT_ILIKE
            if self.accept_word("IN"):
                return Op.NOT_IN
            self.fail(f"expected LIKE, ILIKE or IN after NOT, got {self.peek().describe()}")
        if self.accept_word("IS"):
            negated = self.accept_word("NOT") is not None
            if not self.accept_word("NULL"):
                expected = "NULL after IS NOT" if negated else "NULL or NOT NULL after IS"
                self.fail(f"expected {expected}, got {self.peek().describe()}")
            return Op.IS_NOT_NULL if negated else Op.IS_NULL
        self.fail(f"expected {_EXPECTED_OPERATOR} after {ident_token.text!r}")

    def parse_list(self, ident: Identifier, op_token: _Token) -> tuple[Scalar, ...]:
        if self.peek().kind is not _Kind.LPAREN:
            self.fail(f"expected '(' after {op_token.text.upper()}, got {self.peek().describe()}")
        self.advance()
        values = [self.parse_value(ident, Op.IN, op_token)]
        while self.peek().kind is _Kind.COMMA:
            self.advance()
            values.append(self.parse_value(ident, Op.IN, op_token))
        if self.peek().kind is not _Kind.RPAREN:
            self.fail(f"expected ',' or ')' in the IN list, got {self.peek().describe()}")
        self.advance()
        return tuple(values)

    def parse_value(self, ident: Identifier, op: Op, op_token: _Token) -> Scalar:
        token = self.peek()
        if token.kind not in (_Kind.NUMBER, _Kind.STRING):
            hint = f"; quote strings: '{token.text}'" if token.kind is _Kind.WORD else ""
            self.fail(
                f"expected a value (a number or a quoted string) after {op_token.text!r}, "
                f"got {token.describe()}{hint}"
            )
        self.advance()
        return _check_value(ident, op, token, self.text)

    def parse_order_by(self) -> OrderBy:
        if self.peek().kind is _Kind.END:
            self.fail("expected a column to order by, such as metrics.mae or attributes.start_time")
        ident = self.parse_identifier()
        ascending = True
        if direction := self.accept_word("ASC", "DESC"):
            ascending = direction.upper == "ASC"
        self.expect_end("ASC, DESC or the end of the order_by clause")
        return OrderBy(ident, ascending)


def _combine(node: type[And] | type[Or], operands: list[Expr]) -> Expr:
    """One operand as is; nested nodes of the same kind flattened so ASTs compare simply."""
    if len(operands) == 1:
        return operands[0]
    flat: list[Expr] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, node) else (operand,))
    return node(tuple(flat))


def _describe(ident: Identifier) -> str:
    if ident.entity is Entity.ATTRIBUTE:
        return f"attributes.{ident.key}"
    return _PLURAL[ident.entity]


def _check_operator(ident: Identifier, op: Op, token: _Token, text: str) -> None:
    """Reject operators the identifier's type does not support."""
    if ident.entity in (Entity.PARAM, Entity.TAG):
        return
    if ident.entity is Entity.METRIC:
        allowed = _NUMBER_OPS | _KEY_OPS
        usable = "=, !=, <, <=, >, >=, IN, NOT IN, IS NULL or IS NOT NULL"
    elif ident.key in _NUMERIC_ATTRIBUTES:
        allowed = _NUMBER_OPS | (_KEY_OPS if ident.key in _NULLABLE_ATTRIBUTES else frozenset())
        usable = "=, !=, <, <=, >, >=, IN or NOT IN"
        if ident.key in _NULLABLE_ATTRIBUTES:
            usable = usable.replace(" or ", ", ") + ", IS NULL or IS NOT NULL"
    else:
        allowed = _STRING_ATTRIBUTE_OPS
        usable = "=, !=, LIKE, ILIKE, NOT LIKE, NOT ILIKE, IN or NOT IN"
    if op not in allowed:
        _fail(f"{op.value} does not apply to {_describe(ident)}; use {usable}", text, token.pos)


def _check_value(ident: Identifier, op: Op, token: _Token, text: str) -> Scalar:
    """The typed value of ``token`` for ``ident``, or a SearchSyntaxError saying how to fix it."""
    numeric = ident.entity is Entity.METRIC or (
        ident.entity is Entity.ATTRIBUTE and ident.key in _NUMERIC_ATTRIBUTES
    )
    if numeric:
        if token.kind is _Kind.STRING:
            hint = (
                f"unquote it: {token.value.strip()}"
                if _NUMBER.fullmatch(token.value.strip())
                else f"got {token.text}"
            )
            _fail(f"{_describe(ident)} values are numbers, {hint}", text, token.pos)
        if ident.entity is Entity.METRIC:
            return float(token.text)
        # Integer milliseconds: 1.7e12 is fine; 1000.5 would round differently per database.
        if _INTEGER.fullmatch(token.text):
            number = int(token.text)
        elif (approx := float(token.text)).is_integer():
            number = int(approx)
        else:
            _fail(f"{_describe(ident)} values are integers (milliseconds)", text, token.pos)
        if not -_INT64 <= number < _INT64:
            _fail(f"number {token.text} is out of range", text, token.pos)
        return number
    if token.kind is _Kind.NUMBER:
        _fail(f"{_describe(ident)} values are strings, quote it: '{token.text}'", text, token.pos)
    value = token.value
    if op in _LIKE_OPS and _ends_with_escape(value):
        _fail("LIKE pattern ends with an unescaped backslash; use \\\\ for one", text, token.pos)
    if ident.entity is Entity.ATTRIBUTE and op not in _LIKE_OPS:
        allowed = _ALLOWED_VALUES.get(ident.key)
        if allowed is not None and value not in allowed:
            _fail(
                f"unknown {ident.key} {value!r}; expected one of {', '.join(allowed)}",
                text,
                token.pos,
            )
        if ident.key == "experiment_id" and not _DIGITS.fullmatch(value):
            _fail(f"experiment ids are integers such as '1', got {token.text}", text, token.pos)
    return value


def _ends_with_escape(pattern: str) -> bool:
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return trailing % 2 == 1


def parse_filter(text: str | None) -> Expr | None:
    """The AST of a filter string, or None when there is nothing to filter on.

    Raises:
        SearchSyntaxError: with the 0-based ``position`` of the offending token.
    """
    if text is None or not text.strip():
        return None
    return _Parser(text).parse_filter()


def parse_order_by(clauses: Sequence[str] | None) -> list[OrderBy]:
    """The order-by clauses (``metrics.mae DESC``), each parsed on its own.

    Raises:
        SearchSyntaxError: with the clause as ``text`` and the position within it.
    """
    if clauses is None:
        return []
    if isinstance(clauses, str):
        raise SearchSyntaxError("order_by must be a list of clauses, not one string")
    return [_Parser(clause).parse_order_by() for clause in clauses]
