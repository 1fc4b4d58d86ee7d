"""FHIRPath text to a syntax tree: the grammar of https://hl7.org/fhirpath/ (N1), operators by precedence.

Nodes are tuples whose first item names the shape:
("literal", value, type) | ("empty",) | ("name", identifier) | ("var", name) | ("this",) | ("index",)
| ("call", function, [argument nodes]) | ("path", left, right) | ("indexer", left, index)
| ("binary", operator, left, right) | ("unary", operator, operand) | ("type", operator, operand, type name).
"""
from __future__ import annotations

import re

from ihs.fhir.errors import FhirError


class FhirPathSyntaxError(FhirError):
    """The expression is not valid FHIRPath (400)."""

    def __init__(self, message: str, expression: str):
        super().__init__(f"FHIRPath '{expression}': {message}", 400, code="invalid")


_TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<datetime>@\d{4}(?:-\d{2}(?:-\d{2})?)?(?:T(?:\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
  | (?P<time>@T\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<quoted>`(?:[^`\\]|\\.)*`)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<var>%(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*'))
  | (?P<special>\$(?:this|index|total))
  | (?P<op><=|>=|!=|!~|[-+*/&|=~<>()\[\].,{}])
""", re.VERBOSE | re.DOTALL)

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "'": "'", '"': '"', "`": "`", "/": "/", "\\": "\\"}

# binding power of each infix operator: higher binds tighter (FHIRPath operator precedence)
_INFIX = {"implies": 10, "or": 20, "xor": 20, "and": 30, "in": 40, "contains": 40,
          "=": 50, "~": 50, "!=": 50, "!~": 50, "<": 60, ">": 60, "<=": 60, ">=": 60, "|": 70,
          "is": 80, "as": 80, "+": 90, "-": 90, "&": 90, "*": 100, "/": 100, "div": 100, "mod": 100}
_WORD_OPERATORS = {"implies", "or", "xor", "and", "in", "contains", "is", "as", "div", "mod"}
_UNARY_POWER = 110


def unescape(text: str) -> str:
    """The value of a quoted string or identifier without its quotes, escapes resolved."""
    def replace(match: re.Match) -> str:
        escape = match.group(1)
        if len(escape) == 5:
            return chr(int(escape[1:], 16))
        return _ESCAPES.get(escape, escape)
    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", replace, text[1:-1])


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise FhirPathSyntaxError(f"unexpected character at position {pos}: {text[pos:pos + 10]!r}", text)
        kind = match.lastgroup
        if kind != "space":
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def error(self, message: str) -> FhirPathSyntaxError:
        return FhirPathSyntaxError(message, self.text)

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.error("unexpected end of expression")
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        kind, token = self.next()
        if token != value or kind not in ("op", "ident"):
            raise self.error(f"expected '{value}' but found '{token}'")

    def at(self, value: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "op" and token[1] == value

    def parse(self):
        if not self.tokens:
            raise self.error("the expression is empty")
        node = self.expression(0)
        if self.peek() is not None:
            raise self.error(f"unexpected '{self.peek()[1]}'")
        return node

    def expression(self, min_power: int):
        left = self.prefix()
        while True:
            token = self.peek()
            if token is None:
                return left
            kind, value = token
            operator = value if (kind == "op" or (kind == "ident" and value in _WORD_OPERATORS)) else None
            power = _INFIX.get(operator) if operator else None
            if power is None or power <= min_power:
                return left
            self.pos += 1
            if operator in ("is", "as"):
                left = ("type", operator, left, self.type_name())
            else:
                left = ("binary", operator, left, self.expression(power))

    def type_name(self) -> str:
        kind, value = self.next()
        if kind not in ("ident", "quoted"):
            raise self.error(f"expected a type name but found '{value}'")
        name = value if kind == "ident" else unescape(value)
        while self.at("."):
            self.pos += 1
            name += "." + self.next()[1]
        return name

    def prefix(self):
        kind, value = self.next()
        if kind == "op" and value in ("+", "-"):
            return ("unary", value, self.expression(_UNARY_POWER))
        return self.postfix(self.term(kind, value))

    def postfix(self, node):
        while True:
            if self.at("."):
                self.pos += 1
                kind, value = self.next()
                if kind not in ("ident", "quoted"):
                    raise self.error(f"expected a name after '.' but found '{value}'")
                node = ("path", node, self.invocation(kind, value))
            elif self.at("["):
                self.pos += 1
                index = self.expression(0)
                self.expect("]")
                node = ("indexer", node, index)
            else:
                return node

    def invocation(self, kind: str, value: str):
        name = value if kind == "ident" else unescape(value)
        if kind == "ident" and self.at("("):
            self.pos += 1
            arguments = []
            if not self.at(")"):
                arguments.append(self.expression(0))
                while self.at(","):
                    self.pos += 1
                    arguments.append(self.expression(0))
            self.expect(")")
            return ("call", name, arguments)
        return ("name", name)

    def term(self, kind: str, value: str):
        if kind == "number":
            return ("literal", float(value), "decimal") if "." in value else ("literal", int(value), "integer")
        if kind == "string":
            return ("literal", unescape(value), "string")
        if kind == "datetime":
            text = value[1:]
            if "T" not in text:
                return ("literal", text, "date")
            return ("literal", text.rstrip("T"), "dateTime")
        if kind == "time":
            return ("literal", value[2:], "time")
        if kind == "var":
            name = value[1:]
            return ("var", unescape(name) if name[0] in "`'" else name)
        if kind == "special":
            return ("this",) if value == "$this" else ("index",)
        if kind == "ident" and value in ("true", "false"):
            return ("literal", value == "true", "boolean")
        if kind in ("ident", "quoted"):
            return self.invocation(kind, value)
        if kind == "op" and value == "(":
            node = self.expression(0)
            self.expect(")")
            return node
        if kind == "op" and value == "{":
            self.expect("}")
            return ("empty",)
        raise self.error(f"unexpected '{value}'")


def parse(text: str):
    """The syntax tree of a FHIRPath expression; FhirPathSyntaxError when it is not one."""
    if not isinstance(text, str):
        raise FhirPathSyntaxError(f"an expression must be a string, not {type(text).__name__}", str(text))
    return _Parser(text).parse()
