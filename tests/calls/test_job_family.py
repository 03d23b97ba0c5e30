"""Every catalog bulk job, read without loss: the 18 GETs of the nine kinds on both clients.

Parametrized over the generated `KINDS`, so a kind the spec gains is tested too. Against
FakeKlaviyo on loopback (the wire, the fake's time-driven jobs, the CLI), and on the virtual
clock's `Sim` for the waits whose timing matters (a fleet of every kind, a job vanishing).
"""

from __future__ import annotations

import inspect
import json
import random
import typing
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

import pytest
from klaviyo_catalog import (
    AsyncCatalogJobs,
    BulkJob,
    CatalogJobs,
    Category,
    InvalidRequestError,
    Item,
    JobStatus,
    MemoryRateLimiter,
    NotFoundError,
    Page,
    ResourceRef,
    Variant,
)
from klaviyo_catalog.testing import FakeKlaviyo, VirtualClock
from klaviyo_catalog_api.catalog_spec import KINDS, OPERATIONS

from tests.cli.test_cli import cli
from tests.support.hardening_support import Mode, call, consume, use
from tests.support.waiting_sim import Sim, run

KIND_NAMES = sorted(KINDS)
DELETE_KINDS = [name for name in KIND_NAMES if name.endswith("-delete")]
# The kinds whose errors name the resource by meta.id with an unindexed pointer (the live shape).
ID_PAIRED_KINDS = [name for name in KIND_NAMES if not name.endswith("-create")]
VIEW = {"items": Item, "variants": Variant, "categories": Category}


def relationship(kind: str) -> str:
    (name,) = KINDS[kind].relationships
    return name


def related_type(kind: str) -> str:
    return KINDS[kind].relationships[relationship(kind)]


def get_name(kind: str) -> str:
    return str(KINDS[kind].get_operation)


def list_name(kind: str) -> str:
    return str(KINDS[kind].list_operation)


def iter_name(kind: str) -> str:
    return list_name(kind).replace("list_", "iter_", 1)


def takes_include(kind: str) -> bool:
    return bool(OPERATIONS[get_name(kind)].include)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeKlaviyo]:
    # Pages of 2, so that a walk of three jobs crosses pages.
    with FakeKlaviyo(rate_limits=None, page_size=2) as server:
        yield server
    assert server.internal_errors == []


def opts(fake: FakeKlaviyo) -> dict[str, Any]:
    return {"api_key": fake.api_key, "base_url": fake.base_url, "rate_limiter": MemoryRateLimiter()}


# --- the 18 methods ----------------------------------------------------------------------------


RETURNS: dict[type, tuple[Any, Any, Any]] = {
    CatalogJobs: (BulkJob, Page[BulkJob], Iterator[BulkJob]),
    AsyncCatalogJobs: (
        Coroutine[Any, Any, BulkJob],
        Coroutine[Any, Any, Page[BulkJob]],
        AsyncIterator[BulkJob],
    ),
}


@pytest.mark.parametrize("client", [CatalogJobs, AsyncCatalogJobs], ids=["sync", "async"])
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_kind_has_its_three_methods_with_real_signatures(client: type, kind: str) -> None:
    one, page, many = RETURNS[client]
    get = inspect.signature(getattr(client, get_name(kind)))
    # What help(), IDEs and inspect show: the client's own types, not the type parameters.
    assert get.return_annotation == one
    expected = ["self", "job_id", *(["include"] if takes_include(kind) else []), "fields"]
    assert list(get.parameters) == expected  # delete jobs' GETs take no include
    include = get.parameters.get("include")
    if include is not None:
        assert include.kind is inspect.Parameter.KEYWORD_ONLY
        (literal,) = typing.get_args(typing.get_args(include.annotation)[0])
        assert typing.get_args(literal) == (relationship(kind),)
    listing = inspect.signature(getattr(client, list_name(kind)))
    assert listing.return_annotation == page
    assert list(listing.parameters) == ["self", "status", "cursor", "fields"]
    walk = inspect.signature(getattr(client, iter_name(kind)))
    assert walk.return_annotation == many
    assert {"status", "cursor", "fields", "max_pages"} <= set(walk.parameters)
    for signature in (listing, walk):
        assert all(
            p.kind is inspect.Parameter.KEYWORD_ONLY
            for name, p in signature.parameters.items()
            if name != "self"
        )


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_kind_is_read_by_its_get_list_and_iter(
    mode: Mode, kind: str, fake: FakeKlaviyo
) -> None:
    rel, view = relationship(kind), VIEW[relationship(kind)]
    ids = [fake.add_job(kind, status="complete", items=3, failed=1) for _ in range(3)]
    fake.reset_log()
    include: dict[str, Any] = {"include": [rel]} if takes_include(kind) else {}
    job = call(mode, opts(fake), get_name(kind), ids[0], **include)
    assert isinstance(job, BulkJob) and job.id == ids[0]
    assert job.kind == kind and job.type == KINDS[kind].job_type
    assert job.status is JobStatus.COMPLETE and job.failed_count == 1 and len(job.errors) == 1
    related = getattr(job, rel)
    assert len(related) == 3
    if include:  # resolved to the typed view, in the server's order
        assert all(isinstance(r, view) for r in related) and job.include == (rel,)
    else:  # the ids the job names
        assert all(type(r) is ResourceRef for r in related)
    assert [r.type for r in related] == [related_type(kind)] * 3
    (request,) = fake.request_log
    assert request.path.rstrip("/").endswith(ids[0])
    assert ("include" in request.query) == bool(include)

    page = call(mode, opts(fake), list_name(kind))
    assert isinstance(page, Page) and page.has_next and len(page) == 2
    assert all(isinstance(j, BulkJob) and j.kind == kind for j in page)
    walked = call(mode, opts(fake), iter_name(kind), status="complete")
    assert [j.id for j in walked if j.id in ids] == ids  # across pages, in list order
    assert all(j.kind == kind and j.type == KINDS[kind].job_type for j in walked)


# --- what a list page names reaches the job, its JSON and the CLI --------------------------------


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_list_pages_relationship_ids_reach_the_job_and_its_json(
    mode: Mode, kind: str, fake: FakeKlaviyo
) -> None:
    rel = relationship(kind)
    named = [{"id": f"$custom:::$default:::{kind}-R{i}"} for i in range(3)]
    job_id = fake.add_job(kind, status="queued", items=named)
    refs = [ResourceRef(related_type(kind), r["id"]) for r in named]
    (job,) = [j for j in call(mode, opts(fake), iter_name(kind), status="queued") if j.id == job_id]
    assert getattr(job, rel) == refs and job.include == ()
    as_dict = job.to_dict()
    assert as_dict["kind"] == kind and as_dict["type"] == KINDS[kind].job_type
    assert as_dict[rel] == [{"type": r.type, "id": r.id} for r in refs]
    assert json.loads(job.to_json())[rel] == as_dict[rel]
    if mode == "sync":  # the CLI is sync only
        listed = cli(
            "jobs", "list", kind, "--status", "queued", "--json", fake=fake, key=fake.api_key
        )
        (printed,) = [j for j in map(json.loads, listed.out.splitlines()) if j["id"] == job_id]
        assert printed[rel] == as_dict[rel] and printed["kind"] == kind


# --- failures paired with their resource ---------------------------------------------------------


@pytest.mark.parametrize("kind", ID_PAIRED_KINDS)
def test_update_and_delete_errors_pair_by_meta_id_with_an_unindexed_pointer(
    mode: Mode, kind: str, fake: FakeKlaviyo
) -> None:
    rel = relationship(kind)
    ids = [f"$custom:::$default:::{kind}-SKU-{i}" for i in range(3)]
    pointer = f"/data/attributes/{rel}/data/id"  # no index: meta.id names the resource
    error = {
        "detail": "The resource could not be written.",
        "source": {"pointer": pointer},
        "meta": {"id": ids[2]},
    }
    job_id = fake.add_job(
        kind, status="complete", items=[{"id": i} for i in ids], failed=1, errors=[error]
    )
    plain = call(mode, opts(fake), get_name(kind), job_id)
    (failure,) = plain.failures
    assert failure.resource == ResourceRef(related_type(kind), ids[2])
    assert failure.error.source_pointer == pointer
    if takes_include(kind):
        full = call(mode, opts(fake), get_name(kind), job_id, include=[rel])
        (failure,) = full.failures
        resource = failure.resource
        assert isinstance(resource, Item | Variant | Category) and type(resource) is VIEW[rel]
        assert resource.id == ids[2]
    listed = call(mode, opts(fake), iter_name(kind), status="complete")
    (from_list,) = [j for j in listed if j.id == job_id]
    assert [f.resource for f in from_list.failures] == [ResourceRef(related_type(kind), ids[2])]


@pytest.mark.parametrize("kind", ["item-create", "item-update", "category-delete"])
def test_a_pointer_with_a_5000_digit_index_pairs_with_nothing(
    mode: Mode, kind: str, fake: FakeKlaviyo
) -> None:
    rel = relationship(kind)
    pointer = f"/data/attributes/{rel}/data/{'9' * 5000}"
    errors = [
        {"detail": "huge index", "source": {"pointer": pointer}},
        {"detail": "first one", "source": {"pointer": f"/data/attributes/{rel}/data/0"}},
    ]
    job_id = fake.add_job(kind, status="complete", items=2, failed=2, errors=errors)
    include: dict[str, Any] = {"include": [rel]} if takes_include(kind) else {}
    job = call(mode, opts(fake), get_name(kind), job_id, **include)
    huge, first = job.failures
    assert huge.resource is None and huge.error.source_pointer == pointer  # kept, exactly
    assert first.resource is not None and first.resource.id == getattr(job, rel)[0].id
    if mode == "sync":
        shown = cli("jobs", "errors", kind, job_id, "--json", fake=fake, key=fake.api_key)
        rows = [json.loads(line) for line in shown.out.splitlines()]
        assert [r["resource"] is None for r in rows] == [True, False]
        assert rows[0]["error"]["source_pointer"] == pointer
        table = cli("jobs", "errors", kind, job_id, fake=fake, key=fake.api_key)
        assert table.code == 0 and "2 errors in job" in table.out and "huge index" in table.out


# --- waiting ------------------------------------------------------------------------------------


@pytest.fixture
def sim() -> Sim:
    return Sim(VirtualClock(), page_size=10)


def test_a_mixed_fleet_of_every_kind_is_reported_once_each_as_it_finishes(
    mode: Mode, sim: Sim
) -> None:
    rng, start = random.Random(9), sim.clock()
    per_kind = 25  # three pages of 10 in each kind's list
    for kind in KIND_NAMES:
        for i in range(per_kind):
            sim.add(kind, f"{kind}-{i}", finishes_at=start + rng.uniform(1, 60))
    held = [sim.bulk_job(f"{kind}-{i}") for kind in KIND_NAMES for i in range(per_kind)]
    reported = run(mode, sim, lambda kc: kc.wait_for_jobs(held, poll_interval=5, timeout=300))
    assert Counter((j.kind, j.id) for j, _ in reported) == Counter((j.kind, j.id) for j in held)
    for job, at in reported:
        finished = sim.job(job.id).finishes_at
        assert job.is_done and finished is not None and finished <= at <= finished + 5 + 2
        assert job.failed_count == 1 and len(job.errors) == 1  # fetched with its errors
    # Every kind was polled through its list: a few pages a round, far below a GET per job
    # per round (225 jobs x 12 rounds, about 2,700).
    lists = {r.collection for r in sim.log if r.is_list}
    assert len(lists) == len(KIND_NAMES)
    assert sim.requests() < 2_700 / 5, sim.requests()


def test_a_job_vanishing_mid_wait_is_named_after_the_others_are_yielded(
    mode: Mode, sim: Sim
) -> None:
    start = sim.clock()
    for kind in ("item-update", "variant-delete", "category-create"):
        for i in range(3):
            sim.add(kind, f"{kind}-{i}", finishes_at=start + 10 + i)
    doomed = sim.job("variant-delete-1")
    doomed.finishes_at = None  # runs until deleted
    held = [sim.bulk_job(j.id) for j in sim.jobs.values()]

    def delete_at_six(sim: Sim, request: Any, count: int) -> None:
        doomed.gone = sim.clock() >= start + 6
        return None

    sim.hooks.append(delete_at_six)
    yielded: list[tuple[str, float]] = []

    def wait(kc: Any) -> Any:
        jobs = kc.wait_for_jobs(held, poll_interval=2, timeout=120)
        return consume(jobs, lambda job: yielded.append((job.id, sim.clock())))

    with pytest.raises(NotFoundError) as caught:
        run(mode, sim, wait)
    assert sorted(i for i, _ in yielded) == sorted(j.id for j in held if j.id != doomed.id)
    assert [(j.kind, j.id) for j in caught.value.vanished] == [("variant-delete", doomed.id)]
    assert caught.value.vanished[0].status is JobStatus.PROCESSING  # its last state seen
    # Raised once the others were all out, not at the 404.
    assert sim.clock() >= max(at for _, at in yielded)


def test_an_item_create_job_with_failures_is_reported_with_its_errors(mode: Mode) -> None:
    with FakeKlaviyo(rate_limits=None) as fake:
        others = fake.add_jobs("item-create", 2, status="processing", polls_to_complete=3)
        failing = fake.add_job("item-create", status="processing", polls_to_complete=3, failed=2)
        fast: dict[str, Any] = {"poll_interval": 0.05, "timeout": 20}

        def both(kc: Any) -> Any:
            jobs = [kc.get_item_create_job(i) for i in [*others, failing]]
            if mode == "sync":
                return list(kc.wait_for_jobs(jobs, **fast))

            async def waited() -> list[BulkJob]:
                held = [await job for job in jobs]
                return [job async for job in kc.wait_for_jobs(held, **fast)]

            return waited()

        finished = {job.id: job for job in use(mode, opts(fake), both)}
        single = call(mode, opts(fake), "wait_for_job", failing, kind="item-create", **fast)
        assert fake.internal_errors == []
    for job in (finished[failing], single):
        assert job.status is JobStatus.COMPLETE and job.failed_count == 2
        assert len(job.errors) == 2
        assert {e.meta["external_id"] for e in job.errors if e.meta} == {"ITEM-1", "ITEM-2"}
    assert all(finished[i].failed_count == 0 and not finished[i].errors for i in others)


def test_jobs_wait_prints_an_item_create_jobs_error_lines() -> None:
    with FakeKlaviyo(rate_limits=None) as fake:
        job_id = fake.add_job("item-create", status="processing", polls_to_complete=3, failed=2)
        waited = cli(
            "jobs",
            "wait",
            "item-create",
            job_id,
            "--poll-interval",
            "0.05",
            fake=fake,
            key=fake.api_key,
        )
    assert waited.code == 0
    lines = waited.out.splitlines()
    assert any(f"job {job_id} is complete" in line for line in lines), waited.out
    errors = [line for line in lines if line.startswith("  - ")]
    assert len(errors) == 2, waited.out
    assert "[ITEM-1]" in errors[0] and "[ITEM-2]" in errors[1]


@pytest.mark.parametrize("kind", DELETE_KINDS)
def test_wait_for_job_takes_a_delete_jobs_id_and_kind(mode: Mode, kind: str) -> None:
    with FakeKlaviyo(rate_limits=None) as fake:
        job_id = fake.add_job(kind, status="queued", items=4, polls_to_complete=3)
        states: list[str] = []
        done = call(
            mode,
            opts(fake),
            "wait_for_job",
            job_id,
            kind=kind,
            poll_interval=0.05,
            timeout=20,
            on_progress=lambda job: states.append(str(job.status)),
        )
        requests = fake.request_log
    assert isinstance(done, BulkJob) and done.id == job_id and done.kind == kind
    assert done.status is JobStatus.COMPLETE and done.completed_count == 4
    assert states[-1] == "complete" and states[0] != "complete"
    path = OPERATIONS[get_name(kind)].path.format(job_id=job_id)
    assert {r.path for r in requests} == {path}  # by its GET, with no include
    assert all("include" not in r.query for r in requests)


def test_wait_for_job_refuses_an_id_without_a_kind(mode: Mode, fake: FakeKlaviyo) -> None:
    fake.reset_log()
    with pytest.raises(InvalidRequestError, match=r"kind=, one of: .*item-delete"):
        call(mode, opts(fake), "wait_for_job", "01J0")
    assert fake.request_log == []  # refused before any request
