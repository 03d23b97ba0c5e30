"""Conformance with Klaviyo's own spec, checked by a mock that nobody here wrote.

Stoplight Prism (pinned in tools/prism/, installed by `make prism`) serves the published spec
of the shipped revision, as extracted into tests/fixtures/klaviyo-openapi/, on 127.0.0.1. Each
request picks its mode with a `Prefer` header: static (fixed answers Prism derives from the
schemas; the extract keeps no examples) or dynamic (random data that conforms to the schemas).
Every facade call, all 18 operations (the nine job kinds' single-job GETs and lists) with
every option each takes (include, fields, status, cursor), sync and async, must parse every
answer, and what it returns must agree with the JSON Prism sent, the ids each job names in its
relationships included. Prism
also validates the requests (`--errors`): a request the spec does not allow comes back as an
error, which fails the test too.

One Prism serves the whole run, all pytest-xdist workers included (see the `prism` fixture).

Without Prism these tests skip, except in CI (`CI=true`), where they fail.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from klaviyo_catalog import (
    APIError,
    AsyncCatalogJobs,
    AuthenticationError,
    BadRequestError,
    BulkJob,
    CatalogJobs,
    MemoryRateLimiter,
    NotFoundError,
    Page,
    PaginationError,
    PermissionDeniedError,
    Rate,
    RateLimitError,
    Resource,
    ResourceRef,
    ServerError,
)
from klaviyo_catalog._jsonapi import job_collection
from klaviyo_catalog_api.catalog_spec import KINDS, OPERATIONS, RELATIONSHIPS, REVISION
from klaviyo_catalog_api.views import KIND_TYPES, Attr

from tests.support.hardening_support import PROFILE, run_async
from tests.support.paths import ROOT

PRISM = ROOT / "tools" / "prism" / "node_modules" / ".bin" / "prism"
SPEC = ROOT / "tests" / "fixtures" / "klaviyo-openapi" / f"stable_{REVISION}.json"
# Rounds of random data each way: 25 with the "ci" profile, 50 times as many with `make fuzz`.
ROUNDS = PROFILE.max_examples // 4
JOB_ID = "01GSQPBF74KQ5YTDEPP41T1BZH"
STARTUP_SECONDS = 60.0
MAX_PAGES = 5  # a walk Prism keeps feeding usable cursors (never seen) is cut short here

Json = dict[str, Any]


# --- Prism, started and stopped by the tests ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_prism() -> Iterator[tuple[subprocess.Popen[bytes], str, IO[bytes]]]:
    """Start `prism mock` on a free loopback port; yields (process, base URL, log)."""
    port = free_port()
    # No telemetry: Prism's analytics dependency must not try to reach anything.
    env = {**os.environ, "SCARF_ANALYTICS": "false", "DO_NOT_TRACK": "1"}
    command = [str(PRISM), "mock", str(SPEC), "-h", "127.0.0.1", "-p", str(port)]
    # --errors: a request the spec does not allow gets an error answer, failing the call.
    # -v error: logging every request costs Prism a third of its time.
    command += ["--errors", "-v", "error"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            yield process, f"http://127.0.0.1:{port}", log
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # its own session: what it started
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def log_tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read()[-2000:].decode(errors="replace")


def wait_ready(process: subprocess.Popen[bytes], base_url: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if process.poll() is not None:
            pytest.fail(f"prism exited with {process.returncode}:\n{log_tail(log)}")
        try:
            httpx.get(base_url + "/", timeout=1.0)  # any answer (a 404) means it listens
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                pytest.fail(f"prism did not listen within {STARTUP_SECONDS:g}s:\n{log_tail(log)}")
            time.sleep(0.1)


@contextmanager
def flocked(path: Path, operation: int) -> Iterator[None]:
    """Hold an flock on `path` (created if need be) for the block."""
    with path.open("a") as handle:
        fcntl.flock(handle, operation)
        yield  # closing the file releases it


@pytest.fixture(scope="session")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Prism for the whole run, shared by pytest-xdist's workers: loading the spec costs
    each Prism seconds of CPU. The first worker to need it starts it, and stops it once no
    other worker uses it: every user holds a shared lock on `prism.users` until its session
    ends."""
    if not PRISM.exists():
        message = f"Stoplight Prism is not installed at {PRISM}: npm ci --prefix tools/prism"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert SPEC.exists(), f"no extract of the published {REVISION} spec: {SPEC.parent}/README.md"
    basetemp = tmp_path_factory.getbasetemp()
    # Under xdist each worker's basetemp is a folder of the run's own.
    shared = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    lock, users, address = (shared / f"prism.{name}" for name in ("lock", "users", "url"))

    def once_alone() -> None:
        with flocked(lock, fcntl.LOCK_EX), flocked(users, fcntl.LOCK_EX):
            address.unlink()  # a worker that comes later starts its own

    with ExitStack() as stack:
        with flocked(lock, fcntl.LOCK_EX):
            if address.exists():
                base_url = address.read_text()
            else:
                process, base_url, log = stack.enter_context(running_prism())
                wait_ready(process, base_url, log)
                address.write_text(base_url)
                stack.callback(once_alone)  # before Prism stops, after this user lets go
            stack.enter_context(flocked(users, fcntl.LOCK_SH))
        yield base_url


# --- the calls ----------------------------------------------------------------------------------


Call = tuple[str, str, dict[str, Any]]  # (label, method, keyword arguments)


def calls(*, bare: bool) -> list[Call]:
    """Every operation with every option it takes (include, fields, status, cursor), sync
    walks included; with `bare`, each also without any option."""
    out: list[Call] = []
    for name, spec in sorted(OPERATIONS.items()):
        related = {t: list(names) for t, names in spec.fields.items() if t != spec.job_type}
        if bare:
            out.append((name, name, {} if spec.is_list else {"job_id": JOB_ID}))
        if spec.is_list:
            walk = name.replace("list_", "iter_", 1)
            fields = {spec.job_type: ["errors"]}
            options = {"status": "processing", "cursor": "c-1", "fields": fields}
            out.append((f"{name}+status+cursor+fields", name, options))
            options = {"status": "queued", "cursor": "c-2", "fields": fields}
            out.append((f"{walk}+status+cursor+fields", walk, options))
        else:
            fields = {spec.job_type: ["status", "errors"], **related}
            single: dict[str, Any] = {"job_id": JOB_ID, "fields": fields}
            if spec.include:  # delete jobs' GETs take none
                single["include"] = list(spec.include)
            out.append((f"{name}{'+include' if spec.include else ''}+fields", name, single))
    return out


FAST = {"rate_limits": [Rate(1_000_000, 1.0)], "max_retries": 0}
# What a request asks of Prism in its `Prefer` header: fixed or random answers.
STATIC, DYNAMIC = "dynamic=false", "dynamic=true"


class Recorder:
    """The JSON of every response, taken by a transport around httpx's before the facade
    reads it; its clients send `prefer` to Prism. A single job's `data.id` is set to the id
    asked for: the spec cannot tie it to the path, so Prism's random one would (rightly) be
    refused as another job's."""

    def __init__(self, prefer: str) -> None:
        self.prefer = prefer
        self.responses: list[tuple[httpx.Request, Json]] = []
        self.violations: list[str] = []

    def record(
        self, request: httpx.Request, response: httpx.Response, body: bytes
    ) -> httpx.Response:
        # Prism lists what it found wrong with a request (or its own answer) in this header.
        if "sl-violations" in response.headers:
            self.violations.append(f"{request.url}: {response.headers['sl-violations']}")
        document = json.loads(body)
        data = document.get("data") if isinstance(document, dict) else None
        if request.url.path.rstrip("/").split("/")[-1] == JOB_ID and isinstance(data, dict):
            data["id"] = JOB_ID
            body = json.dumps(document).encode()
        self.responses.append((request, document))
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=body, request=request)

    def client(self) -> httpx.Client:
        recorder, inner = self, httpx.HTTPTransport()

        class Recording(httpx.BaseTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                response = inner.handle_request(request)
                try:
                    return recorder.record(request, response, response.read())
                finally:
                    response.close()

            def close(self) -> None:
                inner.close()

        return httpx.Client(transport=Recording(), headers={"Prefer": self.prefer})

    def async_client(self) -> httpx.AsyncClient:
        recorder, inner = self, httpx.AsyncHTTPTransport()

        class Recording(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                response = await inner.handle_async_request(request)
                try:
                    return recorder.record(request, response, await response.aread())
                finally:
                    await response.aclose()

            async def aclose(self) -> None:
                await inner.aclose()

        return httpx.AsyncClient(transport=Recording(), headers={"Prefer": self.prefer})


def sync_round(base_url: str, recorder: Recorder, calls: list[Call]) -> list[tuple[str, Any]]:
    """Every call once; returns (label, result or the PaginationError that ended a walk)."""
    http = recorder.client()
    results: list[tuple[str, Any]] = []
    with CatalogJobs("pk_prism", base_url=base_url, http_client=http, **limiter()) as kc:
        for label, method, kwargs in calls:
            recorder.responses.clear()
            result = getattr(kc, method)(**kwargs)
            if method.startswith("iter_"):
                result = collect(result, recorder)
            results.append((label, (result, list(recorder.responses))))
    http.close()
    return results


async def async_round(
    base_url: str, recorder: Recorder, calls: list[Call]
) -> list[tuple[str, Any]]:
    http = recorder.async_client()
    results: list[tuple[str, Any]] = []
    async with AsyncCatalogJobs("pk_prism", base_url=base_url, http_client=http, **limiter()) as kc:
        for label, method, kwargs in calls:
            recorder.responses.clear()
            if method.startswith("iter_"):
                jobs: list[BulkJob] = []
                stop: PaginationError | None = None
                try:
                    async for job in getattr(kc, method)(**kwargs):
                        jobs.append(job)
                        if len(recorder.responses) > MAX_PAGES:
                            break
                except PaginationError as error:
                    stop = error
                result: Any = (jobs, stop)
            else:
                result = await getattr(kc, method)(**kwargs)
            results.append((label, (result, list(recorder.responses))))
    await http.aclose()
    return results


def limiter() -> dict[str, Any]:
    return {**FAST, "rate_limiter": MemoryRateLimiter()}


def collect(walk: Iterator[BulkJob], recorder: Recorder) -> tuple[list[BulkJob], Any]:
    """The jobs a walk yields, and the PaginationError that ended it (None: it ended)."""
    jobs: list[BulkJob] = []
    try:
        for job in walk:
            jobs.append(job)
            if len(recorder.responses) > MAX_PAGES:
                break
    except PaginationError as error:
        return jobs, error
    return jobs, None


# --- what the facade returned must agree with what Prism sent ----------------------------------


def moment(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def read_everything(resource: Resource[Any]) -> None:
    """Every typed attribute of a view, and its generated model: valid data must all read."""
    for cls in type(resource).__mro__:
        for name, attribute in vars(cls).items():
            if isinstance(attribute, Attr):
                value = getattr(resource, name)
                raw = resource.attributes.get(name)
                assert (value is None) == (raw is None), name
    assert resource.model is not None


def job_id_of(resource: Json) -> Any:
    """A job resource's id: `data.id` from revision 2023-12-15, `attributes.job_id` before."""
    return resource.get("id", (resource.get("attributes") or {}).get("job_id"))


def agree_job(job: BulkJob, resource: Json) -> None:
    attributes = resource.get("attributes") or {}
    assert job.id == job_id_of(resource)
    assert job.type == resource["type"] and KIND_TYPES[job.kind] == job.type
    assert job.status == attributes["status"]
    assert job.created_at == moment(attributes["created_at"])
    assert job.completed_at == moment(attributes.get("completed_at"))
    assert job.expires_at == moment(attributes.get("expires_at"))
    for name in ("total_count", "completed_count", "failed_count"):
        assert getattr(job, name) == (attributes.get(name) or 0), name
    assert [e.detail for e in job.errors] == [e["detail"] for e in attributes.get("errors") or []]
    assert 0.0 <= job.progress <= 1.0
    assert job.model.type_.value == job.type  # the generated model takes the published data too
    for relationship in RELATIONSHIPS:  # the ids it names, included or not
        linkage = linkage_of(resource, relationship)
        related = getattr(job, relationship)
        if linkage is None:
            assert related is None or related == [], relationship
        else:
            assert [(r.type, r.id) for r in related] == [(x["type"], x["id"]) for x in linkage]


def linkage_of(resource: Json, relationship: str) -> list[Json] | None:
    """The linkage a job resource gives for a relationship: None when it names none."""
    entry = (resource.get("relationships") or {}).get(relationship) or {}
    data: list[Json] | None = entry.get("data")
    return data


def agree_included(job: BulkJob, document: Json, include: list[str]) -> None:
    included = {(r["type"], r["id"]): r for r in document.get("included") or []}
    for relationship in RELATIONSHIPS:
        related = getattr(job, relationship)
        linkage = linkage_of(document["data"], relationship)
        if relationship not in include:  # the ids named, unresolved (agree_job compares them)
            assert all(type(r) is ResourceRef for r in related or ())
            continue
        linkage = linkage or []
        assert related is not None
        # The server's linkage as sent: random linkage may name a resource twice (the spec
        # does not forbid it), and both stay, like the server's order.
        assert [(r.type, r.id) for r in related] == [(x["type"], x["id"]) for x in linkage]
        for entry in related:
            if (entry.type, entry.id) in included:
                assert isinstance(entry, Resource)
                read_everything(entry)
            else:
                assert isinstance(entry, ResourceRef)


def next_of(document: Json) -> str | None:
    """The link a page points onward with (None on the last page)."""
    links = document.get("links")
    return links.get("next") if isinstance(links, dict) else None


def cursor_in(link: str) -> str | None:
    values = httpx.URL(link).params.get_list("page[cursor]")
    return values[0] if len(set(values)) == 1 and values[0] else None


def agree_page(page: Page[BulkJob], request: httpx.Request, document: Json) -> None:
    assert [job.id for job in page] == [job_id_of(r) for r in document["data"]]
    for job, resource in zip(page, document["data"], strict=True):
        agree_job(job, resource)
    sent_cursor = request.url.params.get("page[cursor]")
    assert page.cursor == sent_cursor
    link = next_of(document)
    if not link:
        assert not page.has_next and page.next_cursor is None
    elif cursor_in(link) is not None:
        assert page.next_cursor == cursor_in(link)
    else:  # Prism's random URIs: the page stays whole, asking for the next one fails loudly
        assert page.has_next
        with pytest.raises(PaginationError) as caught:
            _ = page.next_cursor
        assert caught.value.cursor == sent_cursor and caught.value.next_link == link


def agree(label: str, method: str, kwargs: Mapping[str, Any], outcome: Any) -> None:
    result, responses = outcome
    assert responses, "no response was recorded"
    if method.startswith("iter_"):
        jobs, stop = result
        expected = [job_id_of(r) for _, document in responses for r in document["data"]]
        assert [job.id for job in jobs][: len(expected)] == expected[: len(jobs)]
        request, last = responses[-1]
        link = next_of(last)
        if len(responses) <= MAX_PAGES:
            assert [job.id for job in jobs] == expected  # nothing lost
            if link and cursor_in(link) is None:
                assert isinstance(stop, PaginationError)
                assert stop.cursor == request.url.params.get("page[cursor]")
            else:
                assert stop is None
        for request, document in responses:
            agree_page(page_of(document, request), request, document)
        return
    assert len(responses) == 1  # no retries: max_retries=0, and nothing failed
    request, document = responses[0]
    if isinstance(result, Page):
        agree_page(result, request, document)
    else:
        agree_job(result, document["data"])
        agree_included(result, document, kwargs.get("include", []))


def page_of(document: Json, request: httpx.Request) -> Page[BulkJob]:
    """The facade's own reading of one recorded page (for the pages of a walk)."""
    job_type = document["data"][0]["type"] if document["data"] else "any"
    return job_collection(document, job_type, cursor=request.url.params.get("page[cursor]"))


def check_round(results: list[tuple[str, Any]], recorder: Recorder, calls: list[Call]) -> None:
    assert recorder.violations == []
    methods = {label: (method, kwargs) for label, method, kwargs in calls}
    assert [label for label, _ in results] == list(methods)
    for label, outcome in results:
        method, kwargs = methods[label]
        try:
            agree(label, method, kwargs, outcome)
        except AssertionError as error:
            raise AssertionError(f"{label}: {error}; responses: {outcome[1]!r:.3000}") from None


# --- the tests ----------------------------------------------------------------------------------


def test_the_extract_is_the_shipped_revision() -> None:
    spec = json.loads(SPEC.read_text())
    assert spec["info"]["version"] == REVISION
    assert len(spec["paths"]) == len(OPERATIONS)


def test_every_operation_of_every_kind_is_called() -> None:
    """The rounds call all 18 operations: each kind's GET and list, and each list's walk."""
    every = calls(bare=True)
    called = {method for _, method, _ in every}
    for kind in KINDS.values():
        assert kind.get_operation in called and kind.list_operation in called, kind.name
        assert str(kind.list_operation).replace("list_", "iter_", 1) in called, kind.name
    assert len(KINDS) == 9 and len(OPERATIONS) == 18
    for label, method, kwargs in calls(bare=False):  # include wherever, and only where, taken
        spec = OPERATIONS.get(method)
        assert ("include" in kwargs) == bool(spec and spec.include), label


def test_every_call_parses_prisms_static_answers(prism: str) -> None:
    every = calls(bare=True)
    recorder = Recorder(STATIC)
    check_round(sync_round(prism, recorder, every), recorder, every)
    recorder = Recorder(STATIC)
    check_round(run_async(async_round(prism, recorder, every)), recorder, every)


def test_every_call_parses_random_data_valid_per_the_spec(prism: str) -> None:
    """ROUNDS rounds of every call with every option, sync and async side by side (the sync
    rounds in a thread: Prism's data generation, not the client, sets the pace); the first
    round also makes each call without options."""
    failures: list[str] = []

    def run(mode: str, round_number: int, go: Callable[[list[Call], Recorder], Any]) -> None:
        chosen = calls(bare=round_number == 0)
        recorder = Recorder(DYNAMIC)
        try:
            check_round(go(chosen, recorder), recorder, chosen)
        except Exception as error:  # collected: the report lists every failing round
            failures.append(f"{mode} round {round_number}: {type(error).__name__}: {error!s:.4000}")

    def sync_rounds() -> None:
        for n in range(ROUNDS):
            run("sync", n, lambda chosen, recorder: sync_round(prism, recorder, chosen))

    async def async_rounds() -> None:
        for n in range(ROUNDS):
            chosen = calls(bare=n == 0)
            recorder = Recorder(DYNAMIC)
            try:
                check_round(await async_round(prism, recorder, chosen), recorder, chosen)
            except Exception as error:
                failures.append(f"async round {n}: {type(error).__name__}: {error!s:.4000}")

    worker = threading.Thread(target=sync_rounds)
    worker.start()
    run_async(async_rounds())
    worker.join()
    assert failures == [], f"{len(failures)} of {2 * ROUNDS} rounds failed:\n" + "\n".join(
        failures[:5]
    )


ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
    500: ServerError,
    503: ServerError,
}


@pytest.mark.parametrize("status", ERRORS)
def test_every_documented_error_becomes_its_typed_error(prism: str, status: int) -> None:
    """Asked by a `Prefer` header, Prism answers with the spec's own error response for the
    status (random, valid per its schema): each call raises its APIError subclass, with every
    error object the body held."""
    recorder = Recorder(f"code={status}, {DYNAMIC}")
    http = recorder.client()
    for label, method, kwargs in calls(bare=False):
        recorder.responses.clear()
        # A client per call: after a 429 the account pauses, which would slow the next call.
        with (
            CatalogJobs("pk_prism", base_url=prism, http_client=http, **limiter()) as kc,
            pytest.raises(ERRORS[status]) as caught,
        ):
            result = getattr(kc, method)(**kwargs)
            if method.startswith("iter_"):
                list(result)
        ((_, body),) = recorder.responses
        error = caught.value
        assert error.status_code == status, label
        sent = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        assert [e.detail for e in error.errors] == [e.get("detail") for e in sent], label
    http.close()
