"""Checks on JSON values that the database or the encoder would otherwise reject with a 500, or
store as something other than what was sent.

PostgreSQL's ``jsonb`` refuses the NUL character (``\\u0000``) anywhere in a string or key, and
very deep nesting exhausts Python's recursion in encoders. Numbers are read as Python reads
them: integers exactly, numbers with a fraction or an exponent as 64-bit floats. A number that
would not come back out as it was sent is refused: one beyond a float's range (``1e400``, which
Python reads as infinity) or so small that it reads as 0 (``1e-400``), and an integer of more
than ``MAX_INTEGER_DIGITS`` digits. All of these are refused up front with a sentence the client
can act on, naming where the value is.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError

#: The most digits an integer may have (the sign aside). Python's own limit on turning text
#: into integers and back (``sys.int_info.default_max_str_digits``), so every accepted integer
#: is read and written again without loss; PostgreSQL's ``jsonb`` keeps up to 131,072 digits
#: and SQLite keeps the JSON text as it is, so both databases give back every digit.
MAX_INTEGER_DIGITS = 4300
_INTEGER_BOUND = 10**MAX_INTEGER_DIGITS
_FLOAT_MAX = sys.float_info.max

#: A key or index on the way to a value inside a JSON document.
Path = Sequence[str | int]


def describe_path(path: Path) -> str:
    """``site_info.a[1].b`` for the path ``("site_info", "a", 1, "b")``."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            key = step if len(step) <= 64 else step[:64] + "..."
            text += f".{key}" if text else key
    return text


#: What is wrong with a number: the noun for it and the rest of the sentence.
Problem = tuple[str, str]

_OUT_OF_RANGE: Problem = (
    "number",
    "is too large: a number with a fraction or an exponent is kept as a 64-bit floating point "
    "number, at most about 1.8e308 either way",
)
_UNDERFLOW: Problem = (
    "number",
    "is too small: a number with a fraction or an exponent is kept as a 64-bit floating point "
    "number, and this one would read as 0",
)


def _too_many_digits(digits: int | None) -> Problem:
    counted = f"{digits:,}" if digits is not None else f"more than {MAX_INTEGER_DIGITS:,}"
    return ("integer", f"has {counted} digits; integers may have at most {MAX_INTEGER_DIGITS:,}")


def _problem_of(value: Any) -> Problem | None:
    """What makes a parsed value an unstorable number (None for anything else)."""
    if type(value) is float:
        if math.isnan(value):  # refused while parsing; a value built in Python may hold one
            return ("value", "is NaN, which JSON cannot hold")
        if math.isinf(value):
            return _OUT_OF_RANGE
    elif type(value) is int and not -_INTEGER_BOUND < value < _INTEGER_BOUND:
        return _too_many_digits(None)
    return None


def number_message(path: Path, problem: Problem) -> str:
    """One sentence for a number at ``path`` (within a field's value, or within a body) that
    cannot be kept."""
    noun, rest = problem
    where = f" at {describe_path(path)}" if path else ""
    return f"The {noun}{where} {rest}."


def _find(
    value: Any, predicate: Callable[[Any], Problem | None]
) -> tuple[list[str | int], Problem | None]:
    """The path to the first item (in document order) for which ``predicate`` gives a problem,
    and that problem (None when there is none). Iterative, like ``check_json_value``."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        problem = predicate(item)
        if problem:
            return path, problem
        if isinstance(item, dict):
            stack.extend((child, [*path, key]) for key, child in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend(
                (child, [*path, index]) for index, child in reversed(list(enumerate(item)))
            )
    return [], None


def check_json_value(value: Any, *, max_depth: int | None = None) -> None:
    """Raise ``ValidationError`` if ``value`` holds a NUL character, nests too deeply, or holds
    a number that cannot be kept (a float that is not finite, an integer of too many digits).

    Walks the value iteratively, so that hostile nesting cannot overflow the stack here either.
    """
    limit = settings.JSON_MAX_DEPTH if max_depth is None else max_depth
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValidationError("JSON strings may not contain the NUL character (\\u0000).")
        elif isinstance(item, dict | list):
            if depth >= limit:
                raise ValidationError(f"JSON may nest at most {limit} levels deep.")
            if isinstance(item, dict):
                for key, child in item.items():
                    if "\x00" in key:
                        raise ValidationError(
                            "JSON keys may not contain the NUL character (\\u0000)."
                        )
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif type(item) is float:
            if not -_FLOAT_MAX <= item <= _FLOAT_MAX:  # infinite or NaN
                _refuse_number_in(value)
        elif type(item) is int and not -_INTEGER_BOUND < item < _INTEGER_BOUND:
            _refuse_number_in(value)


def _refuse_number_in(value: Any) -> None:
    path, problem = _find(value, _problem_of)
    raise ValidationError(number_message(path, problem or _OUT_OF_RANGE))


#: The text's shapes, for scans in C: every ASCII digit reads 0, an exponent mark e, a sign +
#: and a bracket {. One translation serves both checks below (a regular expression searching
#: the text costs several times more, once a line of a bulk body).
_SHAPES = bytes.maketrans(b"0123456789E-[", b"0000000000e+{")
#: In the shapes: a run of 19 digits, or an exponent of three digits or more.
_LONG_RUN, _LONG_EXPONENT, _LONG_SIGNED_EXPONENT = b"0" * 19, b"0e000", b"0e+000"


def _shapes(raw: bytes) -> bytes:
    return raw.translate(_SHAPES)


def _exact_parse_needed(shapes: bytes) -> bool:
    """Whether the text has a number orjson would not read exactly (see ``loads``)."""
    return (
        _LONG_RUN in shapes or _LONG_EXPONENT in shapes or _LONG_SIGNED_EXPONENT in shapes
    )


def _is_safe(raw: bytes, shapes: bytes, max_depth: int) -> bool:
    """Whether JSON text surely holds no NUL character and no nesting past ``max_depth``: a
    NUL can only come from a ``\\u0000`` escape, and a value cannot nest deeper than the
    text has brackets. Either sign sends the value to the full walk of ``check_json_value``.
    """
    return b"\\u0000" not in raw and shapes.count(b"{") < max_depth


def loads_checked(text: bytes | str, *, max_depth: int | None = None) -> tuple[Any, bool]:
    """``loads(text)``, and whether the value is surely safe without the walk of
    ``check_json_value`` (see ``_is_safe``), from one scan of the text: a bulk body needs both
    for every line. ``max_depth``: ``JSON_MAX_DEPTH``, read once by a caller that checks many
    texts."""
    raw = text.encode() if isinstance(text, str) else text
    shapes = _shapes(raw)
    depth = settings.JSON_MAX_DEPTH if max_depth is None else max_depth
    return _loads(raw, shapes), _is_safe(raw, shapes, depth)


def parse_json_text(text: str | bytes) -> Any:
    """Parse JSON text (a multipart field, a query parameter) or raise ``ValidationError``."""
    try:
        value, safe = loads_checked(text)
    except JSONNumberError as error:
        raise ValidationError(error.message()) from None
    except JSONDecodeError as error:
        raise ValidationError(f"Invalid JSON: {error.msg}.") from None
    if not safe:
        check_json_value(value)
    return value


class JSONDecodeError(ValueError):
    """Text that is not JSON; ``msg`` says why."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


class JSONNumberError(JSONDecodeError):
    """JSON text holding a number that cannot be kept as it was sent.

    ``path`` leads to the number from the top of the document; when the document is an object
    its first step is the top-level key (the field, in a body), which :meth:`message` leaves to
    the caller to name.
    """

    def __init__(self, path: Path, problem: Problem) -> None:
        self.path = tuple(path)
        self.problem = problem
        super().__init__(number_message(self.path, problem)[:-1])

    @property
    def field(self) -> str | None:
        """The top-level key that holds the number, if the document is an object."""
        return self.path[0] if self.path and isinstance(self.path[0], str) else None

    def message(self) -> str:
        """The sentence to file under :attr:`field` (within it), or under no field."""
        return number_message(self.path[1:] if self.field is not None else self.path, self.problem)


# orjson reads integers beyond 64 bits as floats, silently losing digits, and numbers beyond a
# float's range as 0 or infinity: text with a run of 19 or more digits, or an exponent of three
# digits or more (``_exact_parse_needed``), is read by the standard library instead, which
# keeps every digit of an integer and lets the hooks below refuse what cannot be kept.
# (Without such a run or exponent a number is at most about 1e117 and at least about 1e-117.)


def _reject_constant(name: str) -> None:
    raise JSONDecodeError(f"{name} is not valid JSON")


class _Refused:
    """Stands in, during parsing, for a number that cannot be kept, until its path is found."""

    __slots__ = ("problem",)

    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _refused_problem(item: Any) -> Problem | None:
    return item.problem if isinstance(item, _Refused) else None


def _number_hooks() -> tuple[Callable[[str], Any], Callable[[str], Any], list[_Refused]]:
    """``parse_int`` and ``parse_float`` for one parse, and the list of what they refused."""
    refused: list[_Refused] = []

    def parse_int(text: str) -> int | _Refused:
        digits = len(text) - text.startswith("-")
        if digits > MAX_INTEGER_DIGITS:  # never converted: Python itself refuses past its limit
            refused.append(_Refused(_too_many_digits(digits)))
            return refused[-1]
        return int(text)

    def parse_float(text: str) -> float | _Refused:
        value = float(text)
        if not math.isfinite(value):
            refused.append(_Refused(_OUT_OF_RANGE))
            return refused[-1]
        if value == 0.0 and text.lower().partition("e")[0].strip("-+0."):
            refused.append(_Refused(_UNDERFLOW))  # a digit that is not 0, read as 0
            return refused[-1]
        return value

    return parse_int, parse_float, refused


def loads(text: bytes | str) -> Any:
    """Parse JSON text, exactly (big integers keep every digit), refusing NaN and Infinity, and
    numbers that cannot be kept (``JSONNumberError``, which says where the first one is)."""
    raw = text.encode() if isinstance(text, str) else text
    return _loads(raw, _shapes(raw))


def _loads(raw: bytes, shapes: bytes) -> Any:
    if not _exact_parse_needed(shapes):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise JSONDecodeError(error.msg) from None
    try:
        parse_int, parse_float, refused = _number_hooks()
        value = json.loads(
            raw, parse_constant=_reject_constant, parse_int=parse_int, parse_float=parse_float
        )
        if refused:
            # Where is it? (A repeated key may have replaced it: then nothing is wrong.)
            path, problem = _find(value, _refused_problem)
            if problem is not None:
                raise JSONNumberError(path, problem)
        # orjson refuses "\\ud800" and other lone surrogates; the standard library does not.
        json.dumps(value, ensure_ascii=False).encode()
        return value
    except UnicodeEncodeError:
        raise JSONDecodeError(
            "a string holds a lone surrogate, which is not valid Unicode"
        ) from None
    except UnicodeDecodeError:
        raise JSONDecodeError("str is not valid UTF-8") from None
    except json.JSONDecodeError as error:
        raise JSONDecodeError(error.msg) from None
    except RecursionError:
        raise JSONDecodeError("depth limit exceeded") from None


def dumps(value: Any, *, option: int = 0) -> bytes:
    """Compact JSON; integers beyond 64 bits (which orjson cannot write) keep every digit."""
    try:
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, default=_default
        ).encode()


def _default(value: Any) -> Any:
    """What orjson writes natively and the standard library does not (the slow path only)."""
    import datetime
    import uuid

    if isinstance(value, datetime.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, datetime.date | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
