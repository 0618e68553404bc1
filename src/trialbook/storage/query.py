"""A small, safe query language over runs: filters, sorting and paging.

A filter is a Python-like boolean expression, parsed with :mod:`ast` (never evaluated): only
comparisons (``== != < <= > >= in``, ``not in``), ``and`` / ``or`` / ``not``, names, dotted
names, constants (numbers, strings, ``True``, ``False``, ``None``) and lists or tuples of
constants (after ``in``) are accepted. Names:

=====================  ===================================================================
``run_id`` ``status``  columns of the run (``duration`` is ``finished - started``, in seconds;
``kind`` ``key``       ``error`` the error's type name; ``result`` a plain JSON result)
``seed`` ``created``
``started``
``finished``
``duration``
``result`` ``error``
``params.x``           a parameter (``params.model.depth`` reaches into a dict)
``fields.x``           a field
``tags.x``             a tag
``metric.x``           the last value of metric ``x`` (``metric.x.last`` too);
``metric.x.min``       its smallest and largest values and its number of points
``metric.x.max``       (known for metrics written since the summary records them; older
``metric.x.count``     runs have them missing)
``x``                  a bare name: the parameter ``x``, else the field ``x``, else the tag ``x``
=====================  ===================================================================

The rules, the same on every store (the SQL of SQLite included; see
:data:`trialbook.testing.QUERY_TABLE`):

- Types are never converted: a text never equals a number (``run_id == "2"`` keeps nothing,
  ``seed != "10"`` keeps every run with a seed). Booleans are the numbers 1 and 0
  (``flag == 1`` keeps ``flag=True``) and an int equals the same float (``x == 2`` keeps 2.0).
  ``<``, ``<=``, ``>``, ``>=`` across types order numbers before texts, as sorting does.
- A missing value (or ``None``) makes a comparison *unknown*, ``not`` of unknown is unknown,
  ``and`` / ``or`` follow SQL's three-valued logic, and a run is kept only when the whole filter
  is true: ``not (metric.loss >= 0.5)`` skips runs without a ``loss``. Write ``x == None`` /
  ``x != None`` to test presence (always true or false).
- ``x in [a, b]`` is ``x == a or x == b`` with those rules (unknown for a missing ``x``, or when
  a ``None`` item is all that could match), ``x not in [...]`` is ``not (x in [...])``, and an
  empty list is an empty ``or``: ``x in []`` is false and ``x not in []`` true for every run,
  missing values included.
- Values that are not plain JSON (arrays, frames) and NaN are treated as missing. A stored int
  beyond 64 bits reads as the nearest float (as SQLite reads it); an int constant of any size
  in a filter compares exactly (``x < 10**30`` written out in digits).

One parsed :class:`Query` has two back ends that agree: :meth:`Query.predicate` (a Python
function over :class:`~trialbook.storage.records.RunRecord`, for any store), here, and
:func:`trialbook.storage.sqlite_query.query_sql` (an SQLite ``WHERE`` clause over the ``doc``
column of :mod:`trialbook.storage.sqlite`), next to the SQL it serves. :func:`query_runs`
filters, sorts and pages the runs of an experiment, through a store's native ``query_runs``
method when it has one.

Examples
--------
>>> from trialbook.storage.records import RunRecord
>>> q = parse_query('lr > 0.01 and status == "done"')
>>> q.predicate()(RunRecord(1, status="done", params={"lr": 0.1}))
True
>>> runs = [RunRecord(1, seed=10, params={"x": 2.0, "s": "2"}), RunRecord(2, params={"x": "2"})]
>>> def ids(where):
...     return [run.run_id for run in runs if parse_query(where).predicate()(run)]
>>> ids("x == 2"), ids('x == "2"'), ids('s == 2'), ids('run_id in ["1", "2"]')
([1], [2], [], [])
>>> ids('seed != "10"'), ids("seed == None"), ids("not (s in [])"), ids("not (s == '2')")
([1], [2], [1, 2], [])
"""

from __future__ import annotations

import ast
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trialbook.codecs import Encoded
from trialbook.errors import ConfigError, QueryError, did_you_mean
from trialbook.storage.heartbeats import lost_filter, lost_runs, mark_lost
from trialbook.storage.records import RunRecord

__all__ = [
    "METRIC_PARTS",
    "Name",
    "Query",
    "check_names",
    "group_key",
    "metric_part",
    "parse_name",
    "parse_query",
    "query_runs",
    "sort_key",
    "three_valued",
]

COLUMNS = ("run_id", "status", "kind", "key", "seed", "created", "started", "finished")
"""Names that are columns of a run."""
DERIVED = ("duration", "result", "error")
NAMESPACES = {"params": "p", "fields": "f", "tags": "t", "metric": "m"}
ALIASES = {"param": "params", "field": "fields", "tag": "tags", "metrics": "metric"}
"""Other spellings of the namespaces (MLflow writes ``metrics.x`` and ``params.x``)."""
_SYNTAX = (
    'expected comparisons such as `lr > 0.01`, `status == "done"` or `kind in ["job", '
    '"trial"]` joined by and / or / not'
)
_CMP_PY: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
_JSON_TEXT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Documents may hold NaN and +-Infinity (Python's JSON writes them), which SQLite's JSON
# functions (before JSON5 support, 3.42) refuse as malformed: the SQL back end reads such a
# document through `tb_finite_json` (NaN -> null, +-Infinity -> +-9e999, which SQLite reads as
# +-inf; see trialbook.storage.sqlite_query), and the Python back end sees the same values (NaN
# is missing, as SQL has no NaN).
_MARKS = {"NaN": "\x00tb:nan\x00", "Infinity": "\x00tb:inf\x00", "-Infinity": "\x00tb:-inf\x00"}
_TOKENS = {'"\\u0000tb:nan\\u0000"': "null", '"\\u0000tb:inf\\u0000"': "9e999",
           '"\\u0000tb:-inf\\u0000"': "-9e999"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Name:
    """A resolved name of the query language: ``where`` is ``column``, ``derived``, one of the
    namespaces (``params``, ``fields``, ``tags``, ``metric``) or ``bare``; ``path`` the keys.

    Examples
    --------
    >>> parse_name("params.model.depth")
    Name(where='params', path=('model', 'depth'))
    """

    where: str
    path: tuple[str, ...]

    def value(self, run: RunRecord) -> Any:
        """The value of this name in ``run`` (``None`` when missing), as SQLite would see it.

        Examples
        --------
        >>> parse_name("metric.loss").value(RunRecord(1, metrics={"loss": [3, 0.25]}))
        0.25
        """
        if self.where == "column":
            return getattr(run, self.path[0])
        if self.where == "derived":
            return _derived(run, self.path[0])
        if self.where == "bare":
            for slot in (run.params, run.fields, run.tags):
                found = _dig(slot, self.path)
                if found is not None:
                    return found
            return None
        if self.where == "metric":
            summary = run.metrics.get(self.path[0])
            index, rest = metric_part(self.path)
            return _dig(summary[index], rest) if summary and len(summary) > index else None
        return _dig(getattr(run, self.where), self.path)

    def present(self, run: RunRecord) -> bool:
        """Whether ``run`` has this name at all (even with the value ``None``), with a value
        the language reads: not an array or another value kept in the run's bundle only (as
        in the stores' documents, where such a name is not found either).

        Examples
        --------
        >>> parse_name("lr").present(RunRecord(1, tags={"lr": None}))
        True
        >>> parse_name("metric.loss").present(RunRecord(1))
        False
        """
        if self.where in ("column", "derived"):
            return True
        if self.where == "bare":
            return any(_has(slot, self.path) for slot in (run.params, run.fields, run.tags))
        if self.where == "metric":
            summary = run.metrics.get(self.path[0])
            index, rest = metric_part(self.path)
            return summary is not None and len(summary) > index and _has(summary[index], rest)
        return _has(getattr(run, self.where), self.path)

    def json_paths(self) -> list[str]:
        """The JSON paths of the run document (``doc``) where this name lives; empty for a
        column of the run.

        Examples
        --------
        >>> parse_name("lr").json_paths()
        ['$.p."lr"', '$.f."lr"', '$.t."lr"']
        """
        if self.where in ("column", "derived"):
            return []
        rest = "".join(f'."{p}"' for p in self.path)
        if self.where == "bare":
            return [f"$.{slot}{rest}" for slot in ("p", "f", "t")]
        if self.where == "metric":
            index, keys = metric_part(self.path)
            head, tail = f'."{self.path[0]}"', "".join(f'."{p}"' for p in keys)
            return [f"$.m{head}[{index}]{tail}" if tail or index != 1 else f"$.m{head}"]
        return [f"$.{NAMESPACES[self.where]}{rest}"]


METRIC_PARTS = {"count": 0, "last": 1, "min": 2, "max": 3}
"""The items of a metric's summary (``[count, last, min, max]``) by the name that follows the
metric's: ``metric.loss.min``."""


def metric_part(path: Sequence[str]) -> tuple[int, tuple[str, ...]]:
    """The index in a metric's summary of the name ``metric.<path>``, and the keys to follow
    in that value (none for a plain number).

    Examples
    --------
    >>> metric_part(("loss",)), metric_part(("loss", "min")), metric_part(("loss", "x"))
    ((1, ()), (2, ()), (1, ('x',)))
    """
    if len(path) == 2 and path[1] in METRIC_PARTS:
        return METRIC_PARTS[path[1]], ()
    return 1, tuple(path[1:])


def _derived(run: RunRecord, name: str) -> Any:
    if name == "duration":
        if run.started is None or run.finished is None:
            return None
        return run.finished - run.started
    if name == "result":
        return _plain(run.result)
    return run.error.type if run.error is not None else None


def _dig(value: Any, path: Sequence[str]) -> Any:
    for key in path:
        if type(value) is not dict:
            return None
        value = value.get(key)
    return _plain(value)


def _has(value: Any, path: Sequence[str]) -> bool:
    for key in path:
        if type(value) is not dict or key not in value:
            return False
        value = value[key]
    return not (isinstance(value, Encoded) and value.plain is None)


def _plain(value: Any) -> Any:
    """A value as ``json_extract`` returns it: containers as compact JSON text, NaN as NULL, an
    int beyond 64 bits as the nearest float (infinity beyond the floats).

    Examples
    --------
    >>> _plain(2**70 + 1), _plain(-(10**400)), _plain(2**63 - 1)
    (1.1805916207174113e+21, -inf, 9223372036854775807)
    """
    if type(value) is Encoded:
        value = value.plain  # a NumPy number's plain value, as the document holds it
    if isinstance(value, list | dict):
        return _render(_marked(value))
    if type(value) is float and math.isnan(value):
        return None
    if type(value) is int and not -(2**63) <= value < 2**63:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return value


def _marked(value: Any) -> Any:
    if type(value) is float and not math.isfinite(value):
        return _MARKS["NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"]
    if type(value) is list:
        return [_marked(v) for v in value]
    if type(value) is dict:
        return {k: _marked(v) for k, v in value.items()}
    return value


def _render(value: Any) -> str:
    text = _JSON_TEXT(value)
    if "\\u0000tb:" in text:
        for token, replacement in _TOKENS.items():
            text = text.replace(token, replacement)
    return text


def group_key(value: Any) -> Any:
    """A value as a group's key: booleans as the numbers 1 and 0 and a float that is an
    integer as that integer, since the query language finds them equal (one group).

    Examples
    --------
    >>> group_key(True), group_key(2.0), group_key(2.5), group_key("a")
    (1, 2, 2.5, 'a')
    """
    if type(value) is bool:
        return int(value)
    if type(value) is float and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def sort_key(value: Any) -> tuple[int, Any]:
    """SQLite's order of values: ``NULL`` < numbers < text (booleans are numbers).

    Examples
    --------
    >>> sorted([None, "a", 2, True], key=sort_key)
    [None, True, 2, 'a']
    """
    if value is None:
        return (0, 0)
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def parse_name(text: str) -> Name:
    """Resolve a (dotted) name of the query language.

    Raises
    ------
    ConfigError
        If ``text`` is not a name (``params.lr``, ``status``, ...).

    Examples
    --------
    >>> parse_name("status")
    Name(where='column', path=('status',))
    >>> parse_name("lr")
    Name(where='bare', path=('lr',))
    """
    parts = text.strip().split(".")
    if not all(p.isidentifier() for p in parts):
        msg = (
            f"{text!r} is not a name of the query language; expected a column "
            f"({', '.join(COLUMNS + DERIVED)}), params.x, fields.x, tags.x, metric.x or a bare "
            "parameter / field / tag name"
        )
        raise ConfigError(msg)
    return _resolve(parts, text)


def _resolve(parts: list[str], text: str) -> Name:
    head = ALIASES.get(parts[0], parts[0]) if len(parts) > 1 else parts[0]
    if len(parts) == 1 and head in COLUMNS:
        return Name("column", (head,))
    if len(parts) == 1 and head in DERIVED:
        return Name("derived", (head,))
    if head in NAMESPACES:
        if len(parts) == 1:
            msg = f"{text!r} names a namespace; write {head}.<name>, e.g. {head}.lr"
            raise ConfigError(msg)
        return Name(head, tuple(parts[1:]))
    if head in COLUMNS + DERIVED:
        msg = f"{head!r} is a column of the run and has no attribute {parts[1]!r}"
        raise ConfigError(msg)
    return Name("bare", tuple(parts))


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed, checked filter; build it with :func:`parse_query`.

    Examples
    --------
    >>> q = parse_query("not (metric.loss >= 0.5)")
    >>> q.predicate()(RunRecord(1, metrics={"loss": [10, 0.25]}))
    True
    >>> q.predicate()(RunRecord(2))
    False
    """

    text: str
    tree: ast.expr

    def predicate(self) -> Callable[[RunRecord], bool]:
        """A Python function telling whether a run matches (generic back end).

        Examples
        --------
        >>> parse_query("kind == 'job'").predicate()(RunRecord(1, kind="job"))
        True
        """
        test = _Py().node(self.tree)
        return lambda run: test(run) is True

    def names(self) -> list[tuple[Name, int, str]]:
        """The names the filter reads: ``(name, column in the text, its text)`` each.

        Examples
        --------
        >>> [(n.where, col, text) for n, col, text in parse_query("lr > 1 or tags.m == 2").names()]
        [('bare', 1, 'lr'), ('tags', 11, 'tags.m')]
        """
        text = self.text.strip()
        found = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Compare):
                for operand in (node.left, *node.comparators):
                    if isinstance(operand, ast.Name | ast.Attribute):
                        segment = ast.get_source_segment(text, operand) or ""
                        col = _column(text, operand.col_offset)
                        found.append((_name_of(operand), col, segment))
        return sorted(found, key=lambda item: item[1])


def parse_query(text: str) -> Query:
    """Parse and check a filter of the query language (see the module documentation).

    Raises
    ------
    QueryError
        On a syntax error or anything but the allowed expressions, naming the token and its
        column (also kept as the error's ``column`` and ``length``).

    Examples
    --------
    >>> parse_query('kind == "job" and tags.model == "mlp"').text
    'kind == "job" and tags.model == "mlp"'
    >>> parse_query("lr > __import__('os')")
    Traceback (most recent call last):
    ...
    trialbook.errors.QueryError: bad query "lr > __import__('os')": a call (`__import__('os')`)
    at column 6 is not allowed; expected comparisons such as ...
    """
    if not isinstance(text, str):
        msg = f"a query must be a str (got {text!r} that is a {type(text)})"
        raise ConfigError(msg)
    source = text.strip()
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError as exc:
        col = exc.offset or len(source)
        end = exc.end_offset if exc.end_lineno in (None, exc.lineno) else None
        msg = f"bad query {text!r}: syntax error at column {col} ({exc.msg}); {_SYNTAX}"
        raise QueryError(msg, query=source, column=col,
                         length=(end - col) if end and end > col else 1) from None  # fmt: skip
    except (RecursionError, MemoryError):  # Python's parser on very deep nesting (issue 16)
        msg = f"bad query {text!r}: nested too deeply to parse; {_SYNTAX}"
        raise QueryError(msg, query=source) from None
    except UnicodeError as exc:  # e.g. a lone surrogate, which is no UTF-8 text (issue 16)
        msg = f"bad query {text!r}: not valid text ({exc}); {_SYNTAX}"
        raise QueryError(msg, query=source) from None
    if _depth(tree) > MAX_DEPTH:
        msg = (
            f"bad query {text!r}: nested more than {MAX_DEPTH} levels deep; {_SYNTAX}, "
            "with fewer parentheses and `not`"
        )
        raise QueryError(msg, query=source)
    _Checker(source).boolean(tree)
    return Query(text, tree)


MAX_DEPTH = 32
"""How deeply a filter's syntax tree may nest: the checker, the evaluator and the SQL of every
store recurse over it (fuzzing found Python's recursion limit, issue 16), and SQLite's parser
overflows its stack on the SQL of about 40 nested ``not (...)`` (fuzzing again)."""


def _depth(tree: ast.AST) -> int:
    """The nesting depth of ``tree``, walked without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest


_NODE_NAMES = {
    ast.Call: "a call", ast.Subscript: "a subscript", ast.BinOp: "arithmetic",
    ast.Lambda: "a lambda", ast.IfExp: "a conditional expression", ast.Dict: "a dict",
    ast.Set: "a set", ast.ListComp: "a comprehension", ast.GeneratorExp: "a comprehension",
    ast.NamedExpr: "an assignment", ast.JoinedStr: "an f-string", ast.Starred: "a star",
}  # fmt: skip


class _Checker:
    """Walks a parsed expression and refuses every node outside the whitelist."""

    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, node: ast.AST, what: str | None = None) -> None:
        token = ast.get_source_segment(self.text, node) or type(node).__name__
        what = what or _NODE_NAMES.get(type(node), f"{type(node).__name__}")
        col = _column(self.text, getattr(node, "col_offset", 0))
        msg = f"bad query {self.text!r}: {what} (`{token}`) at column {col} is not allowed; "
        msg += _SYNTAX
        raise QueryError(msg, query=self.text, column=col, length=_span(node, token))

    def boolean(self, node: ast.expr) -> None:
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self.boolean(value)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.boolean(node.operand)
        elif isinstance(node, ast.Compare):
            self.compare(node)
        else:
            self.fail(
                node,
                "a value where a condition is expected"
                if isinstance(node, ast.Name | ast.Attribute | ast.Constant)
                else None,
            )

    def compare(self, node: ast.Compare) -> None:
        self.operand(node.left)
        has_in = any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
        if has_in and len(node.ops) > 1:
            self.fail(node, "a chained comparison with `in`")
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                if not isinstance(right, ast.List | ast.Tuple):
                    self.fail(right, "`in` needs a list of constants; this")
                for item in right.elts:  # type: ignore[attr-defined]
                    self.constant(item)
            elif type(op) not in _CMP_PY:
                self.fail(node, f"the operator {type(op).__name__}")
            else:
                self.operand(right)

    def operand(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name | ast.Attribute):
            parts = _dotted(node)
            if parts is None:
                self.fail(node)
                return
            segment = ast.get_source_segment(self.text, node) or ".".join(parts)
            try:
                _resolve(parts, segment)
            except ConfigError as exc:  # `params == 1`, `status.x == 1`: at this name
                col = _column(self.text, node.col_offset)
                msg = f"bad query {self.text!r}: `{segment}` at column {col}: {exc}"
                raise QueryError(msg, query=self.text, column=col, length=len(segment)) from None
        else:
            self.constant(node)

    def constant(self, node: ast.expr) -> None:
        if _constant(node) is _NOT_CONSTANT:
            generic = "a value that is not a number, string, True, False or None"
            self.fail(node, _NODE_NAMES.get(type(node), generic))


_NOT_CONSTANT = object()


def _span(node: ast.AST, token: str) -> int:
    """How many characters of the filter ``node`` spans (on its first line)."""
    return max(1, len(token.splitlines()[0]) if token else 1)


def _column(text: str, offset: int) -> int:
    """The 1-based column, in characters, of a node's ``col_offset`` (which counts UTF-8
    bytes): ``name == "é" and x`` has ``x`` at column 17, its byte offset being 17."""
    return len(text.encode("utf-8", "surrogatepass")[:offset].decode("utf-8", "replace")) + 1


def _constant(node: ast.expr) -> Any:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _constant(node.operand)
        if type(inner) in (int, float):
            return -inner if isinstance(node.op, ast.USub) else inner
        return _NOT_CONSTANT
    if isinstance(node, ast.Constant) and (
        node.value is None or type(node.value) in (bool, int, float, str)
    ):
        return node.value
    return _NOT_CONSTANT


def _dotted(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def _name_of(node: ast.expr) -> Name:
    parts = _dotted(node)
    assert parts is not None
    return _resolve(parts, ".".join(parts))


# -- the Python back end: three-valued logic (None = unknown), as SQL --------------------------


class _Py:
    def node(self, node: ast.expr) -> Callable[[RunRecord], bool | None]:
        if isinstance(node, ast.BoolOp):
            parts = [self.node(v) for v in node.values]
            return _py_and(parts) if isinstance(node.op, ast.And) else _py_or(parts)
        if isinstance(node, ast.UnaryOp):
            inner = self.node(node.operand)
            return lambda run: None if (v := inner(run)) is None else not v
        assert isinstance(node, ast.Compare)
        operands = [node.left, *node.comparators]
        tests = [self.compare(operands[i], op, operands[i + 1]) for i, op in enumerate(node.ops)]
        return tests[0] if len(tests) == 1 else _py_and(tests)

    def operand(self, node: ast.expr) -> Callable[[RunRecord], Any]:
        value = _constant(node)
        if value is not _NOT_CONSTANT:
            return lambda run: value
        return _name_of(node).value

    def compare(
        self, left: ast.expr, op: ast.cmpop, right: ast.expr
    ) -> Callable[[RunRecord], bool | None]:
        get = self.operand(left)
        if isinstance(op, ast.In | ast.NotIn):
            assert isinstance(right, ast.List | ast.Tuple)
            items = [sort_key(_constant(e)) for e in right.elts]
            negate = isinstance(op, ast.NotIn)
            return lambda run: _py_in(get(run), items, negate)
        other = self.operand(right)
        if _constant(right) is None and isinstance(op, ast.Eq | ast.NotEq):
            present = isinstance(op, ast.NotEq)
            return lambda run: (get(run) is not None) is present
        cmp = _CMP_PY[type(op)]

        def test(run: RunRecord) -> bool | None:
            a, b = get(run), other(run)
            if a is None or b is None:
                return None
            return cmp(sort_key(a), sort_key(b))

        return test


def _py_in(value: Any, items: list[tuple[int, Any]], negate: bool) -> bool | None:
    if not items:
        return negate  # an empty `or`: false for every run, missing values included, as SQL
    if value is None:
        return None
    key = sort_key(value)
    if any(key == item for item in items):
        return not negate
    if any(item[0] == 0 for item in items):
        return None  # `x IN (.., NULL)` is unknown when x matches nothing, as in SQL
    return negate


def _py_and(parts: list[Callable[[RunRecord], bool | None]]) -> Callable[..., bool | None]:
    def test(run: RunRecord) -> bool | None:
        unknown = False
        for part in parts:
            v = part(run)
            if v is False:
                return False
            unknown = unknown or v is None
        return None if unknown else True

    return test


def _py_or(parts: list[Callable[[RunRecord], bool | None]]) -> Callable[..., bool | None]:
    def test(run: RunRecord) -> bool | None:
        unknown = False
        for part in parts:
            v = part(run)
            if v is True:
                return True
            unknown = unknown or v is None
        return None if unknown else False

    return test


def three_valued(
    node: ast.expr,
    compare: Callable[[ast.expr, ast.cmpop, ast.expr], tuple[Any, Any]],
    every: Callable[[list[Any]], Any],
    some: Callable[[list[Any]], Any],
) -> tuple[Any, Any]:
    """A filter's tree as a pair ``(where true, where false)`` (a run in neither is unknown),
    built from each comparison's pair (``compare(left, op, right)``) with the conjunction
    ``every`` and the disjunction ``some`` of the back end's values: ``not`` swaps the pair,
    ``and`` is true where every part is and false where some part is, ``or`` the other way,
    and a chained comparison is the ``and`` of its links.

    Examples
    --------
    >>> sets = {"a": ({1}, {2}), "b": ({1, 2}, set())}  # runs 1, 2, 3: b is unknown for 3
    >>> def compare(left, op, right):
    ...     return sets[left.id]
    >>> def every(parts):
    ...     return set.intersection(*parts)
    >>> def some(parts):
    ...     return set.union(*parts)
    >>> three_valued(parse_query("a == 1 and not (b == 1)").tree, compare, every, some)
    (set(), {1, 2})
    """
    if isinstance(node, ast.BoolOp):
        parts = [three_valued(v, compare, every, some) for v in node.values]
        trues, falses = [p[0] for p in parts], [p[1] for p in parts]
        if isinstance(node.op, ast.And):
            return every(trues), some(falses)
        return some(trues), every(falses)
    if isinstance(node, ast.UnaryOp):
        true, false = three_valued(node.operand, compare, every, some)
        return false, true
    assert isinstance(node, ast.Compare)
    operands = [node.left, *node.comparators]
    links = [compare(operands[i], op, operands[i + 1]) for i, op in enumerate(node.ops)]
    return every([p[0] for p in links]), some([p[1] for p in links])


# -- querying -----------------------------------------------------------------------------


def query_runs(
    store: Any,
    experiment_id: int,
    *,
    where: str | None = None,
    order_by: str | None = None,
    descending: bool = False,
    limit: int | None = 100,
    offset: int = 0,
    meta: Mapping[str, Any] | None = None,
) -> tuple[int, list[RunRecord]]:
    """Filter, sort and page the runs of an experiment: ``(total matching, page)``.

    Uses the store's own ``query_runs`` method when it has one (the SQLite store does, in
    SQL), else reads the runs and filters and sorts them in Python. Runs sort by ``order_by``
    (any name of the language; missing values last), then by ``run_id``.

    Lost runs (:mod:`trialbook.storage.heartbeats`: ``running`` in the store, their process
    stopped sending heartbeats) are ``failed`` here, with their ``LostRun`` error, as
    ``load_experiment`` shows them: the experiment's metadata is read once (or taken from
    ``meta``), the filter's comparisons of ``status`` are rewritten with the ids of the lost
    runs (:func:`~trialbook.storage.heartbeats.lost_filter`) so that ``status == "failed"``
    counts them and ``status == "running"`` does not, and the runs of the page are marked.
    Sorting by ``status`` still sorts a lost run among the running ones.

    Parameters
    ----------
    store
        Any :class:`~trialbook.storage.Store`.
    experiment_id
        ``ExperimentInfo.id`` of the experiment.
    where
        A filter (see the module documentation); ``None`` or blank keeps every run.
    order_by, descending
        The name to sort by (default ``run_id``) and the direction.
    limit, offset
        The page: at most ``limit`` runs (``None``: all) after skipping ``offset``.
    meta
        The experiment's metadata (``ExperimentInfo.meta``) when the caller has just read it;
        ``None`` reads it from the store (one read).

    Raises
    ------
    QueryError
        On a bad filter, and on a name of the filter that no run of the experiment has (a
        text value written without quotes, ``loss == hinge``, or a misspelt name), naming it
        and its column (:func:`check_names`).
    ConfigError
        On a bad sort name, limit or offset, and on a sort name that no run has.

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> exp = store.create_experiment("q")
    >>> store.write_runs(exp.id, [RunRecord(i, params={"lr": i / 10}) for i in range(1, 6)])
    >>> total, page = query_runs(store, exp.id, where="lr >= 0.2", order_by="lr",
    ...                          descending=True, limit=2)
    >>> total, [run.run_id for run in page]
    (4, [5, 4])
    >>> store.close()
    """
    _check_page(limit, offset)
    query = parse_query(where) if where and where.strip() else None
    name = parse_name(order_by) if order_by else None
    meta = _meta(store, experiment_id) if meta is None else meta
    now = time.time()
    lost = lost_runs(meta, now=now)
    native = getattr(store, "query_runs", None)
    if native is not None:
        if query is not None or name is not None:
            check_names(store, experiment_id, query, order_by)
        if query is not None and lost:
            where = ast.unparse(lost_filter(query.tree, lost))
        answer = native(
            experiment_id, where=where, order_by=order_by, descending=descending,
            limit=limit, offset=offset,
        )  # fmt: skip
        if not lost:
            return answer
        total, page = answer
        return total, mark_lost(page, meta, now=now)
    runs = store.read_runs(experiment_id)
    if query is not None or name is not None:
        check_names(runs, experiment_id, query, order_by)
    if query is not None:
        if lost:
            query = Query(query.text, lost_filter(query.tree, lost))
        keep = query.predicate()
        runs = [run for run in runs if keep(run)]
    if name is not None:
        runs = sort_runs(runs, name, descending)
    elif descending:
        runs = runs[::-1]
    page = runs[offset : None if limit is None else offset + limit]
    return len(runs), mark_lost(page, meta, now=now) if lost else page


def _meta(store: Any, experiment_id: int) -> Mapping[str, Any]:
    """The metadata of the experiment ``experiment_id`` (empty if it has none or is gone, and
    for a reader of runs that lists no experiments, such as a read-only view of one)."""
    listing = getattr(store, "list_experiments", None)
    if listing is None:
        return {}
    for info in listing():
        if info.id == experiment_id:
            return info.meta if isinstance(info.meta, Mapping) else {}
    return {}


_WHAT = {"bare": "a parameter, field or tag", "params": "a parameter", "fields": "a field",
         "tags": "a tag", "metric": "a metric"}  # fmt: skip


def check_names(
    source: Any, experiment_id: int, query: Query | None, order_by: str | None = None
) -> None:
    """Refuse a filter or sort name that no run of the experiment has: it can only be a text
    written without quotes (``loss == hinge``) or a misspelt name, and would silently match
    nothing. An experiment without runs accepts every name.

    ``source`` is a store (its ``names_present`` method answers in one query when it has one)
    or the experiment's runs.

    Raises
    ------
    QueryError
        Naming the first unknown name of the filter, its column, and how to quote a text.
    ConfigError
        For an unknown sort name.

    Examples
    --------
    >>> runs = [RunRecord(1, params={"loss": "hinge"})]
    >>> check_names(runs, 1, parse_query('loss == "hinge"'))
    >>> check_names(runs, 1, parse_query("loss == hinge"))
    Traceback (most recent call last):
    ...
    trialbook.errors.QueryError: bad query 'loss == hinge': `hinge` at column 9 is not a
    parameter, field or tag of any run of this experiment; to compare with a text, quote it:
    loss == "hinge"
    """
    checked = [item for item in (query.names() if query is not None else [])
               if item[0].where not in ("column", "derived")]  # fmt: skip
    sort = parse_name(order_by) if order_by else None
    if sort is not None and sort.where not in ("column", "derived"):
        checked.append((sort, 0, order_by or ""))
    if not checked:
        return
    names = [item[0] for item in checked]
    present = getattr(source, "names_present", None)
    if present is not None:
        found = present(experiment_id, [[]] + [n.json_paths() for n in names])
    else:
        runs = list(source) if not hasattr(source, "read_runs") else source.read_runs(experiment_id)
        found = [bool(runs)] + [any(n.present(run) for run in runs) for n in names]
    if not found[0]:
        return  # no runs yet: nothing to check against
    records: list[RunRecord] | None = None
    for (name, col, text), ok in zip(checked, found[1:], strict=True):
        if ok:
            continue
        if records is None:  # only on the way to an error: a few runs read whole cost nothing
            records = _first_runs(source, experiment_id)
        held, near = _look_around(records, name)
        msg = _unknown(query, name, col, text, near)
        if held is not None and col == 0:
            msg = f"cannot sort by {text!r}: it {_not_plain(held)}"
        elif held is not None:
            assert query is not None
            msg = f"bad query {query.text!r}: `{text}` at column {col} {_not_plain(held)}"
        if col == 0:
            raise ConfigError(msg)
        assert query is not None
        raise QueryError(msg, query=query.text.strip(), column=col, length=len(text))


_HELD = {"npy": "arrays", "arrow": "tables (DataFrames, Series)", "pickle": "pickled objects",
         "tjson": "values such as tuples, sets or bytes"}  # fmt: skip
"""What a value kept in the run's bundle (not in its document) is, by its codec."""


def _first_runs(source: Any, experiment_id: int, runs: int = 200) -> list[RunRecord]:
    """The first ``runs`` runs of the experiment, whole (a store or a list of runs)."""
    if hasattr(source, "read_runs"):
        return query_runs(source, experiment_id, limit=runs)[1]
    return list(source)[:runs]


def _look_around(records: Sequence[RunRecord], name: Name) -> tuple[str | None, str]:
    """For a name that filters do not find: the codec of a value it has in one of
    ``records`` that filters do not read (an array, a DataFrame: kept in the run's bundle
    only), else ``None``; and a "did you mean" of the names beside it in those runs.

    Examples
    --------
    >>> _look_around([RunRecord(1, params={"alpha": 1})], parse_name("alpah"))
    (None, " (did you mean 'alpha'?)")
    """
    slots = {"bare": ("params", "fields", "tags")}.get(name.where, (name.where,))
    beside: set[str] = set()
    for run in records:
        for slot in slots:
            parent: Any = getattr(run, slot, None)
            for key in name.path[:-1]:
                parent = parent.get(key) if type(parent) is dict else None
            if type(parent) is not dict:
                continue
            value = parent.get(name.path[-1])
            if type(value) is Encoded and value.plain is None:
                return value.codec, ""
            beside.update(parent)
    return None, did_you_mean(name.path[-1], sorted(beside - {name.path[-1]}))


def _not_plain(codec: str) -> str:
    return (
        f"holds {_HELD.get(codec, 'encoded values')}, which filters and sorts do not "
        "compare (they compare numbers, texts, booleans and None); record a number "
        "computed from it (its mean, its last value) as a field and use that"
    )


def _unknown(query: Query | None, name: Name, col: int, text: str, near: str = "") -> str:
    what = f"{_WHAT[name.where]} of any run of this experiment{near}"
    if col == 0:
        columns = ", ".join(COLUMNS + DERIVED)
        return (f"cannot sort by {text!r}: it is not {what}; sort by a column ({columns}), "
                "params.x, fields.x, tags.x or metric.x")  # fmt: skip
    assert query is not None
    source = query.text.strip()
    msg = f"bad query {query.text!r}: `{text}` at column {col} is not {what}"
    if name.where == "bare" and text in _OTHER_CONSTANTS:
        msg += f"; the constant is written {_OTHER_CONSTANTS[text]}, as in Python"
    elif near:  # a misspelt name, rather than a text written without quotes
        pass
    elif name.where == "bare" and len(name.path) == 1:
        quoted = source[: col - 1] + _JSON_TEXT(text) + source[col - 1 + len(text) :]
        msg += f"; to compare with a text, quote it: {quoted}"
    elif name.where == "bare" and (hint := did_you_mean(name.path[0], [*NAMESPACES, *ALIASES])):
        msg += (
            f"; {name.path[0]!r} is not a namespace{hint}: write params.x, fields.x, tags.x or "
            "metric.x (or a bare name)"
        )
    return msg


_OTHER_CONSTANTS = {"true": "True", "false": "False", "null": "None", "none": "None"}


def sort_runs(runs: list[RunRecord], name: Name, descending: bool) -> list[RunRecord]:
    """Runs sorted by ``name`` (missing values last whatever the direction), then by id.

    Examples
    --------
    >>> runs = [RunRecord(1, params={"lr": 0.2}), RunRecord(2), RunRecord(3, params={"lr": 0.1})]
    >>> [r.run_id for r in sort_runs(runs, parse_name("lr"), descending=True)]
    [1, 3, 2]
    """
    valued = [(name.value(run), run) for run in runs]
    present = [(v, r) for v, r in valued if v is not None]
    present.sort(key=lambda vr: vr[1].run_id)
    present.sort(key=lambda vr: sort_key(vr[0]), reverse=descending)
    missing = sorted((r for v, r in valued if v is None), key=lambda r: r.run_id)
    return [r for _, r in present] + missing


def _check_page(limit: int | None, offset: int) -> None:
    if limit is not None and (type(limit) is not int or limit < 0):
        msg = f"limit must be an int >= 0 (got {limit!r}); pass the page size, e.g. limit=100"
        raise ConfigError(msg)
    if type(offset) is not int or offset < 0:
        msg = f"offset must be an int >= 0 (got {offset!r}); pass how many runs to skip"
        raise ConfigError(msg)
