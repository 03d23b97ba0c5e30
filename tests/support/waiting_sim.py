"""A simulated Klaviyo for driving the waiting flow on the virtual clock, without real time.

`Sim` answers the GET endpoints of every job kind from jobs whose status depends on the
virtual time (or on hooks that change them between two requests), serves lists 100 a page
with cursors of either kind Klaviyo could use (stable "after job N", or a plain offset that
shifts when a job leaves the list), and records every request. `run` calls a real
`CatalogJobs` or `AsyncCatalogJobs` on it: an httpx.MockTransport instead of the network, on
a `VirtualClock` attached to it (advanced by the sleeps the client asks for).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from klaviyo_catalog import AsyncCatalogJobs, BulkJob, CatalogJobs, MemoryRateLimiter, Rate
from klaviyo_catalog.testing import VirtualClock
from klaviyo_catalog_api.catalog_spec import KINDS as SPEC_KINDS
from klaviyo_catalog_api.catalog_spec import OPERATIONS

from tests.support import documents as docs
from tests.support.hardening_support import Mode, use


def _collection(operation: str) -> str:
    """The path segment of an operation's jobs: catalog-item-bulk-create-jobs."""
    return OPERATIONS[operation].path.split("/")[2]


# Every kind of the generated spec: (JSON:API type, collection), and which collections answer a
# list or a single-job GET.
KINDS = {
    name: (kind.job_type, _collection(kind.get_operation or str(kind.list_operation)))
    for name, kind in SPEC_KINDS.items()
}
LISTABLE = {_collection(k.list_operation) for k in SPEC_KINDS.values() if k.list_operation}
GETTABLE = {_collection(k.get_operation) for k in SPEC_KINDS.values() if k.get_operation}


@dataclass
class SimJob:
    kind: str  # JSON:API type
    collection: str
    id: str
    seq: int
    total: int = 10
    queued_until: float = -1.0  # queued before this time
    finishes_at: float | None = None  # None: runs until a test changes it
    final: str = "complete"
    status_override: str | None = None  # e.g. an unknown status, or a hook's change
    listed: bool = True  # False: in no list (the single-job GET still finds it)
    gone: bool = False  # 404 everywhere
    owner: str = "us"

    def status(self, now: float) -> str:
        if self.status_override is not None:
            return self.status_override
        if self.finishes_at is not None and now >= self.finishes_at:
            return self.final
        return "queued" if now < self.queued_until else "processing"

    def resource(self, now: float, *, slim: bool) -> dict[str, Any]:
        status = self.status(now)
        done = status in ("complete", "cancelled")
        if done:
            completed = self.total - 1
        elif self.finishes_at is not None and status == "processing":
            completed = self.total // 2
        else:
            completed = 0
        failed = 1 if done else 0
        attributes: dict[str, Any] = {
            "status": status,
            "total_count": self.total,
            "completed_count": completed,
            "failed_count": failed,
        }
        if not slim:
            attributes["errors"] = [{"detail": "bad price"}] if failed else []
        return docs.job(self.id, self.kind, shape=docs.NEW, **attributes)


@dataclass
class Request:
    time: float
    path: str
    query: dict[str, str]
    status: int

    @property
    def collection(self) -> str:
        return self.path.split("/")[2]

    @property
    def is_list(self) -> bool:
        return self.path.rstrip("/").count("/") == 2  # with or without the trailing slash


Hook = Callable[["Sim", httpx.Request, int], httpx.Response | None]


@dataclass
class Sim:
    clock: VirtualClock
    page_size: int = 100
    offset_cursors: bool = False  # a cursor that is a position, shifted by departures
    jobs: dict[tuple[str, str], SimJob] = field(default_factory=dict)
    log: list[Request] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    # Next links to serve instead of the real ones, one per page that has a next page.
    bad_next_links: list[str] = field(default_factory=list)
    _seq: int = 0

    def add(self, kind: str, job_id: str, **options: Any) -> SimJob:
        job_type, collection = KINDS[kind]
        self._seq += 1
        job = SimJob(job_type, collection, job_id, self._seq, **options)
        self.jobs[(collection, job_id)] = job
        return job

    def job(self, job_id: str) -> SimJob:
        (found,) = [j for j in self.jobs.values() if j.id == job_id]
        return found

    def bulk_job(self, job_id: str) -> BulkJob:
        """The job as an app would hold it: parsed from a single-job-shaped resource."""
        from klaviyo_catalog._jsonapi import job_document

        job = self.job(job_id)
        return job_document({"data": job.resource(self.clock(), slim=False)}, job.kind, ())

    def handle(self, request: httpx.Request) -> httpx.Response:
        for hook in list(self.hooks):
            answer = hook(self, request, len(self.log))
            if answer is not None:
                self._record(request, answer.status_code)
                return answer
        response = self._serve(request)
        self._record(request, response.status_code)
        return response

    def _record(self, request: httpx.Request, status: int) -> None:
        url = urlsplit(str(request.url))
        self.log.append(Request(self.clock(), url.path, dict(parse_qsl(url.query)), status))

    def _serve(self, request: httpx.Request) -> httpx.Response:
        url = urlsplit(str(request.url))
        parts = url.path.strip("/").split("/")
        query = dict(parse_qsl(url.query))
        now = self.clock()
        if len(parts) == 3 and parts[1] in GETTABLE:
            job = self.jobs.get((parts[1], parts[2]))
            if job is None or job.gone:
                return _json(404, docs.error(404, "not found"))
            return _json(200, docs.single(job.resource(now, slim=False)))
        if len(parts) == 2 and parts[1] in LISTABLE:
            return self._page(parts[1], query, now)
        return _json(404, docs.error(404, "no such path"))

    def _page(self, collection: str, query: dict[str, str], now: float) -> httpx.Response:
        status = None
        if "filter" in query:
            status = query["filter"].split('"')[1]
        matching = [
            j
            for j in self.jobs.values()
            if j.collection == collection
            and j.listed
            and not j.gone
            and (status is None or j.status(now) == status)
        ]
        cursor = query.get("page[cursor]")
        if cursor is None:
            start = 0
        elif cursor.startswith("after:"):
            after = int(cursor[6:])
            start = next((i for i, j in enumerate(matching) if j.seq > after), len(matching))
        elif cursor.startswith("offset:"):
            start = int(cursor[7:])
        else:
            return _json(400, docs.error(400, "bad cursor", parameter="page[cursor]"))
        page = matching[start : start + self.page_size]
        next_url = None
        if start + self.page_size < len(matching):
            token = (
                f"offset:{start + self.page_size}"
                if self.offset_cursors
                else f"after:{page[-1].seq}"
            )
            next_url = f"https://x/api/{collection}?page%5Bcursor%5D={token}"
            if self.bad_next_links:
                next_url = self.bad_next_links.pop(0)
        slim = any(k.startswith("fields[") for k in query)
        return _json(200, docs.collection([j.resource(now, slim=slim) for j in page], next_url))

    # --- what tests read back ---

    def requests(self, collection: str | None = None, *, listing: bool | None = None) -> int:
        return sum(
            1
            for r in self.log
            if (collection is None or r.collection == collection)
            and (listing is None or r.is_list == listing)
        )

    def max_in_window(self, seconds: float, collection: str, listing: bool) -> int:
        """The most requests to one operation within any `seconds`-long window."""
        times = [r.time for r in self.log if r.collection == collection and r.is_list == listing]
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


def _json(status: int, document: Any, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(document).encode(),
        headers={"Content-Type": "application/vnd.api+json", **headers},
    )


def status_reply(status: int, **headers: str) -> httpx.Response:
    return _json(status, docs.error(status, "injected"), **headers)


def options(sim: Sim, **extra: Any) -> dict[str, Any]:
    return {
        "api_key": "pk_test_virtual_0123456789",
        "base_url": "https://a.klaviyo.com",
        "retry_backoff": 0.5,
        "rate_limiter": MemoryRateLimiter(clock=sim.clock),
        **extra,
    }


def run(mode: Mode, sim: Sim, call: Callable[[Any], Any], **extra: Any) -> Any:
    """`call(client)` on a sync or async client over `sim`, through the tests' one runner. An
    awaitable it returns is awaited; an iterator (or async iterator) is consumed into (job,
    virtual time) pairs."""
    transport = httpx.MockTransport(sim.handle)

    def http(mode: Mode) -> httpx.Client | httpx.AsyncClient:
        if mode == "sync":
            return httpx.Client(transport=transport)
        return httpx.AsyncClient(transport=transport)

    def work(kc: CatalogJobs | AsyncCatalogJobs) -> Any:
        result = call(kc)
        if isinstance(result, Iterator):
            return ((job, sim.clock()) for job in result)
        if hasattr(result, "__aiter__"):
            return _stamped(result, sim.clock)
        return result

    return use(mode, options(sim, **extra), work, http=http, clock=sim.clock)


async def _stamped(jobs: AsyncIterator[BulkJob], clock: VirtualClock) -> AsyncIterator[Any]:
    async for job in jobs:
        yield job, clock()


__all__ = ["Rate", "Sim", "SimJob", "options", "run", "status_reply"]
