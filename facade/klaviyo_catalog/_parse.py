"""A successful response's document read into the call's result, within the deadline.

The body is decoded and bounded (`_jsonapi.decode`, `_bounds`) and handed to the call's
reader (a job, or a page of jobs), which checks the counts a document may hold. A large body is
read in a worker thread, so that an async client's event loop runs meanwhile.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from . import _jsonapi as jsonapi
from ._deadline import CLOCK_SLACK, Deadline
from ._flow import Call, Flow
from ._operations import Operation
from ._readers import Invalid

T = TypeVar("T")

#: A response body at least this long is parsed in a worker thread rather than inline: what
#: parsing one costs in Python (not json.loads: see `_bounds`) then never holds an async
#: client's event loop, and the call's deadline holds. A 100-item job is about 60 KB; a body
#: under 256 KiB costs at most some 40 ms inline (thousands of minimal errors), and the hop
#: to a thread about 80 µs of CPU (async; 20 µs sync).
PARSE_OFF_LOOP_BYTES = 256 * 1024


def parsed(
    op: Operation, response: httpx.Response, deadline: Deadline, parse: Callable[[Any], T]
) -> Flow[T]:
    """A successful response's JSON read by `parse`, within the call's deadline; a body that
    is not the documented shape, or past the bounds of a document, is InvalidResponseError.

    A body of PARSE_OFF_LOOP_BYTES or more is read in a worker thread (a `Call`): the event
    loop of an async client runs meanwhile, and the deadline holds whatever the reading
    costs. (json.loads itself holds the GIL throughout; `_bounds` keeps that short.)
    """
    read = functools.partial(_read, op, response, parse)
    if len(response.content) < PARSE_OFF_LOOP_BYTES:
        return read()
    outcome = yield Call(read, deadline.timeout())
    if isinstance(outcome, TimeoutError) and deadline.seconds_left() <= CLOCK_SLACK:
        raise deadline.exceeded(f"{op.name}: reading the response document")
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome  # type: ignore[no-any-return]


def _read(op: Operation, response: httpx.Response, parse: Callable[[Any], T]) -> T:
    """`parse` of a successful response's JSON (see `parsed`), bounded and checked."""
    document = jsonapi.decode(response, op.name)
    try:
        return parse(document)
    except Invalid as exc:
        raise jsonapi.invalid(response, op.name, str(exc)) from exc
