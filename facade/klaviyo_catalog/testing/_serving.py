"""How FakeKlaviyo answers one request (on the server's threads).

Each request passes, in order: an injected fault (if one is queued: it answers instead, as a
proxy in front of Klaviyo would, and uses no quota), authentication (401), the revision header
(400), the rate limits (429), routing (404/405), query parameters (400), the job lookup (404),
and finally the document. Everything after the rate limits counts against them.
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import parse_qsl

from ._documents import JSON, job_document, list_document, throttled_document
from ._faults import Fault
from ._http import Incoming, Reply
from ._jobs import Job
from ._model import Endpoint, Shape, valid_revision
from ._pages import Pager
from ._ratelimit import Quotas
from ._request import ApiError, Query, json_reply, parse_query, route

REQUEST_ID = "X-Klaviyo-Req-Id"  # a UUID on every response, as Klaviyo sends


@dataclass(frozen=True)
class RequestRecord:
    """One request as the fake saw it."""

    time: float  # time.monotonic() when it reached the rate limiter (after any delay fault)
    method: str
    path: str  # as sent, still percent-encoded
    query: dict[str, str]  # decoded; a repeated key keeps its last value, as Klaviyo reads it
    headers: dict[str, str]  # lower-cased names
    status: int | None  # None: no response (the connection reset before one, or a stall)
    fault: str | None = None  # kind of the injected fault that answered or delayed it
    counted: bool = False  # passed the rate limiter and used quota
    request_id: str | None = None  # the X-Klaviyo-Req-Id sent back (none on injected faults)


# Faults that act on the fake's own answer (which then uses quota), not in place of it.
_ON_THE_ANSWER = frozenset({"delay", "trickle"})


@dataclass
class RandomFaults:
    """Faults injected at random (`FakeKlaviyo.inject_random`): each request meets one of
    `faults` with `probability`, drawn from `rng`."""

    probability: float
    faults: tuple[Fault, ...]
    rng: random.Random = field(default_factory=random.Random)


class Serving:
    """The request handling of `FakeKlaviyo`, which sets up the state declared here."""

    shape: Shape
    api_key: str
    retire_revisions_on: date | None
    internal_errors: list[BaseException]
    _access_tokens: set[str]
    _lock: threading.RLock
    _stopping: threading.Event
    _links_base: str
    _limiter: Quotas | None
    _jobs: dict[str, Job]
    _faults: list[Fault]
    _random_faults: RandomFaults | None
    _pager: Pager
    _log: list[RequestRecord]

    def _handle(self, incoming: Incoming) -> Reply:
        """Answer one HTTP request (called on the server's threads)."""
        arrival = time.monotonic()
        shape = self._shape(incoming.headers.get("revision"))
        content_type = self.shape.content_type
        fault = self._next_fault()
        if fault is not None and fault.kind == "stall":
            self._record(arrival, incoming, None, fault.kind, counted=False)
            # Until the fake stops or the stall's time is up; then hang up.
            self._stopping.wait(None if math.isinf(fault.seconds) else fault.seconds)
            return Reply(0, reset="before_response")
        if fault is not None and fault.kind not in _ON_THE_ANSWER:
            reply = fault.reply(content_type)
            sent = None if reply.reset == "before_response" else reply.status
            self._record(arrival, incoming, sent, fault.kind, counted=False)
            return reply
        if fault is not None and fault.kind == "delay" and self._stopping.wait(fault.seconds):
            return Reply(0, reset="before_response")  # stopped while delaying: just hang up
        with self._lock:
            now = time.monotonic()
            try:
                reply, counted = self._serve(incoming, shape, now)
            except Exception as exc:  # a bug in the fake: answer, keep serving, let tests see it
                self.internal_errors.append(exc)
                error = ApiError.of(500, "error", "Fake failure.", f"The fake failed: {exc!r}")
                reply, counted = error.reply(content_type), False
            # Every answer of Klaviyo's own, errors included, names the request, as Klaviyo's do.
            request_id = str(uuid.uuid4())
            pace = fault.seconds if fault is not None and fault.kind == "trickle" else 0.0
            headers = (*reply.headers, (REQUEST_ID, request_id))
            reply = Reply(reply.status, reply.body, headers, pace=pace)
            self._record(
                now, incoming, reply.status, fault.kind if fault else None, counted, request_id
            )
        return reply

    def _serve(self, incoming: Incoming, shape: Shape | None, now: float) -> tuple[Reply, bool]:
        """The reply, and whether the request used rate-limit quota."""
        content_type = self.shape.content_type
        quota: tuple[tuple[str, str], ...] | None = None
        for job in self._jobs.values():  # jobs that progress on their own (finish_in)
            if job.finishes_at is not None:
                job.advance(now)
        try:
            self._authenticate(incoming.headers.get("authorization"))
            shape = _require_revision(shape, incoming.headers.get("revision"))
            self._refuse_retired(incoming.headers.get("revision"))
            routed: tuple[Endpoint, str | None] | ApiError
            try:
                routed = route(incoming.path, shape)
            except ApiError as error:
                routed = error  # counted against the quota first, as any request past here
            quota = self._admit(now, None if isinstance(routed, ApiError) else routed[0])
            if isinstance(routed, ApiError):
                raise routed
            endpoint, job_id = routed
            if incoming.method != "GET":
                detail = f"{incoming.method} is not allowed here; these endpoints are read-only."
                raise ApiError.of(405, "method_not_allowed", "Method not allowed.", detail)
            query = parse_query(incoming.query, endpoint, shape)
            if job_id is None:
                document = self._page(endpoint, query, shape)
            else:
                document = self._single(endpoint, job_id, query, shape)
            reply = json_reply(200, document, shape.content_type)
        except ApiError as error:
            reply = error.reply(content_type)
        if quota is None:
            return reply, False
        return Reply(reply.status, reply.body, reply.headers + quota), True

    def _shape(self, revision: str | None) -> Shape | None:
        """The shape a request with this revision header is served in (the spec's, for any valid
        revision); None for a missing or malformed header."""
        if revision is None or not valid_revision(revision):
            return None
        return self.shape

    def _refuse_retired(self, revision: str | None) -> None:
        """Klaviyo's answer to a revision two years past its date, when asked to give it."""
        if self.retire_revisions_on is None or revision is None:
            return
        released = date.fromisoformat(revision[:10])
        try:
            retired = released.replace(year=released.year + 2)
        except ValueError:  # 29 February
            retired = released.replace(year=released.year + 2, day=28)
        if self.retire_revisions_on >= retired:
            detail = (
                f"API revision {revision} was retired on {retired.isoformat()}. "
                "Use a supported revision."
            )
            raise ApiError.of(410, "gone", "Revision retired.", detail, "revision")

    def _authenticate(self, authorization: str | None) -> None:
        """Accept the fake's API key or one of its access tokens; otherwise raise Klaviyo's 401."""
        if not authorization:
            detail = "Send Authorization: Klaviyo-API-Key <private key>, or Bearer <token>."
            raise ApiError.of(401, "not_authenticated", "Not authenticated.", detail)
        scheme, _, credential = authorization.partition(" ")
        if scheme == "Bearer":
            if credential not in self._access_tokens:
                detail = "The access token is not valid, or has expired."
                raise ApiError.of(401, "authentication_failed", "Authentication failed.", detail)
            return
        if authorization != f"Klaviyo-API-Key {self.api_key}":
            detail = "The credentials are not a valid private API key."
            raise ApiError.of(401, "authentication_failed", "Authentication failed.", detail)

    def _admit(self, now: float, endpoint: Endpoint | None) -> tuple[tuple[str, str], ...]:
        """Count a request against its operation's windows: the RateLimit-* headers to send back
        (none when unlimited), or raise a 429 when a window is full."""
        if self._limiter is None:
            return ()
        decision = self._limiter.acquire(endpoint.operation if endpoint else None, now)
        if decision is None:
            return ()
        if not decision.admitted:
            retry_after = int(dict(decision.headers)["Retry-After"])
            raise ApiError(429, throttled_document(retry_after), decision.headers)
        return decision.headers

    def _single(self, endpoint: Endpoint, job_id: str, query: Query, shape: Shape) -> JSON:
        """The document of one job, which counts as a poll (a job with `polls_to_complete`
        advances); a 404 when the endpoint's kind has no such job."""
        job = self._jobs.get(job_id)
        if job is None or job.kind is not endpoint.kind:
            detail = f"There is no {endpoint.kind.type} with id {job_id!r}."
            raise ApiError.of(404, "not_found", "Not found.", detail)
        job.poll()
        return job_document(job, shape, self._links_base, query.fields, query.include)

    def _page(self, endpoint: Endpoint, query: Query, shape: Shape) -> JSON:
        """The document of the requested page of a list; being listed counts as a poll of each
        job on it, as a GET does."""
        page, links = self._pager.page(
            endpoint, self._jobs.values(), query, shape, self._links_base
        )
        for job in page:
            job.poll()
        return list_document(page, shape, self._links_base, query.fields, links)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.pop(0)
            chance = self._random_faults
            if chance is not None and chance.rng.random() < chance.probability:
                return chance.rng.choice(chance.faults)
            return None

    def _record(
        self,
        at: float,
        incoming: Incoming,
        status: int | None,
        fault: str | None,
        counted: bool,
        request_id: str | None = None,
    ) -> None:
        """Append one request to the log `request_log` returns, as it was received and how it was
        answered."""
        query = dict(parse_qsl(incoming.query, keep_blank_values=True))
        record = RequestRecord(
            at,
            incoming.method,
            incoming.path,
            query,
            incoming.headers,
            status,
            fault,
            counted,
            request_id,
        )
        with self._lock:
            self._log.append(record)


def _require_revision(shape: Shape | None, revision: str | None) -> Shape:
    """The shape a request is served in, or Klaviyo's 400 for a missing or malformed revision
    header."""
    if shape is not None:
        return shape
    if revision is None:
        detail = "Send a revision header (YYYY-MM-DD[.suffix])."
    else:
        detail = f"{revision!r} is not a revision (YYYY-MM-DD[.suffix], 2022-10-17 or later)."
    raise ApiError.of(400, "invalid", "Invalid revision.", detail, "revision")
