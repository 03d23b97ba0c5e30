"""Every kind of response FakeKlaviyo sends validates against the curated spec it serves.

The generated revision is checked against the committed openapi/klaviyo-catalog-jobs.yaml. The
others are curated on the fly from the trimmed extracts of Klaviyo's published specs in
tests/fixtures/klaviyo-openapi.
"""

from __future__ import annotations

import importlib.util
import json
import re
import ssl
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import yaml
from klaviyo_catalog.testing import DEFAULT_RATE_LIMITS, DEFAULT_REVISION, FakeKlaviyo, Fault
from klaviyo_catalog_api.catalog_spec import KINDS, OPERATIONS, RELATIONSHIPS
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from scripts.generate import parse_rate
from tests.support.paths import ROOT

REPO = ROOT
SPEC = REPO / "openapi" / "klaviyo-catalog-jobs.yaml"
EXTRACTS = REPO / "tests" / "fixtures" / "klaviyo-openapi"
REVISIONS = sorted({DEFAULT_REVISION, "2022-10-17", "2023-01-24", "2023-12-15", "2024-10-15"})
# Every kind of the generated spec: its single-job GET (with the relationship it concerns, or
# None where the GET takes no include) and its list.
SINGLE = {
    name: next(iter(OPERATIONS[kind.get_operation].include), None)
    for name, kind in KINDS.items()
    if kind.get_operation
}
LISTS = {name: kind.job_type for name, kind in KINDS.items() if kind.list_operation}
RELATED = RELATIONSHIPS
TLS = ssl.create_default_context()  # shared: httpx builds one per client otherwise (~25 ms)


def load_curate() -> ModuleType:
    name = "curate_for_fake_conformance"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "curate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


CURATED: dict[str, dict[str, Any]] = {}  # revision -> the curated spec, as the fake reads it


@pytest.fixture(scope="module", params=REVISIONS)
def spec(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> OpenAPI:
    revision: str = request.param
    if revision == DEFAULT_REVISION:
        CURATED[revision] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
        return OpenAPI.from_file_path(str(SPEC))
    source = EXTRACTS / f"stable_{revision}.json"
    curate = load_curate()
    published = json.loads(source.read_text(encoding="utf-8"))  # load_source's YAML is slow
    curated = curate.curate(published, source.name)
    path = tmp_path_factory.mktemp("specs") / f"{revision}.yaml"
    path.write_text(curate.dump(curated), encoding="utf-8")
    CURATED[revision] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return OpenAPI.from_file_path(str(path))


def revision_of(spec: OpenAPI) -> str:
    return str(spec.spec["info"]["version"])


def serving(spec: OpenAPI) -> FakeKlaviyo:
    """A fake serving this spec's shape."""
    return FakeKlaviyo(spec=CURATED[revision_of(spec)], rate_limits=None)


def validate(spec: OpenAPI, response: httpx.Response) -> None:
    request = response.request
    mock_request = MockRequest(
        "https://a.klaviyo.com",  # the spec's server; the fake's own address is irrelevant here
        request.method,
        request.url.path,
        args=dict(parse_qsl(request.url.query.decode(), keep_blank_values=True)),
        headers=dict(request.headers),
    )
    mock_response = MockResponse(
        response.content,
        response.status_code,
        headers=dict(response.headers),
        content_type=response.headers["content-type"],
    )
    spec.validate_response(mock_request, mock_response)


def job_fields(fake: FakeKlaviyo) -> str:
    """Sparse job fields, with the id field where the spec's fieldset has one."""
    fieldset = fake.shape.endpoints[0].fieldsets[fake.shape.endpoints[0].kind.type]
    ids = [name for name in ("job_id", "id") if name in fieldset]
    return ",".join([*ids, "status", "created_at", "total_count", "completed_count"])


def seed(fake: FakeKlaviyo) -> dict[str, list[str]]:
    """Jobs of every kind in every state, both error shapes included."""
    full_error = {
        "id": "e-1",
        "code": "invalid",
        "title": "Invalid price.",
        "detail": "Price must be a number.",
        "source": {"pointer": "/data/attributes/items/data/0"},
    }
    jobs: dict[str, list[str]] = {}
    for kind in dict.fromkeys([*SINGLE, *LISTS]):  # ordered: job ids depend on it
        jobs[kind] = [
            fake.add_job(kind, status="queued"),
            fake.add_job(kind, status="processing", total=4),
            fake.add_job(kind, status="complete", total=5, failed=2),  # minimal live errors
            fake.add_job(kind, status="cancelled", errors=[full_error], failed=1),
            fake.add_job(kind, items=[{"id": "$custom:::$default:::DUP"}] * 2),
            fake.add_job(kind, polls_to_complete=2, total=3),
        ]
    return jobs


def successes(fake: FakeKlaviyo, client: httpx.Client, revision: str) -> Iterator[httpx.Response]:
    jobs = seed(fake)
    for kind, relationship in SINGLE.items():
        job_type = KINDS[kind].job_type
        variants: list[dict[str, str]] = [{}, {f"fields[{job_type}]": job_fields(fake)}]
        if relationship is not None:
            variants += [
                {"include": relationship},
                {f"fields[{RELATED[relationship]}]": "external_id,updated"},
                {
                    "include": relationship,
                    f"fields[{job_type}]": job_fields(fake) + ",errors",
                    f"fields[{RELATED[relationship]}]": "external_id",
                },
            ]
        for job_id in jobs[kind]:
            for params in variants:
                yield client.get(fake.url(kind, job_id), params=params)
    fake.add_jobs("item-create", 120, status="processing")
    for kind, job_type in LISTS.items():
        url = fake.url(kind)
        yield client.get(url)
        yield client.get(url, params={"filter": "equals(status,'complete')"})
        yield client.get(url, params={"filter": 'equals(status,"nothing-has-this")'})
        yield client.get(url, params={f"fields[{job_type}]": job_fields(fake)})
        first = client.get(url, params={"filter": "equals(status,'processing')"})
        yield first
        if first.json()["links"]["next"]:
            yield client.get(first.json()["links"]["next"])


def failures(fake: FakeKlaviyo, client: httpx.Client, revision: str) -> Iterator[httpx.Response]:
    job_id = fake.add_job("item-update")
    url = fake.url("item-update", job_id)
    list_url = fake.url("variant-update")
    yield httpx.get(url, headers={"revision": revision}, verify=TLS)  # 401, no key
    yield httpx.get(url, headers={**fake.headers(revision), "Authorization": "x"}, verify=TLS)
    yield client.get(url, params={"fields[catalog-item]": "nope"})
    yield client.get(url, params={"include": "variants"})
    yield client.get(list_url, params={"filter": "status=processing"})
    yield client.get(list_url, params={"page[cursor]": "not-a-cursor"})
    yield client.get(fake.url("category-update", "01JNOSUCHJOB"))
    for fault in (Fault.status(500), Fault.status(503), Fault.rate_limited("2")):
        fake.inject(fault)
        yield client.get(list_url)
    fake.set_rate_limits([(1, 60.0)])
    yield client.get(list_url)
    yield client.get(list_url)  # throttled by the limiter itself


def test_every_response_validates(spec: OpenAPI) -> None:
    revision = revision_of(spec)
    seen: set[tuple[str, int]] = set()
    with (
        serving(spec) as fake,
        httpx.Client(headers=fake.headers(revision), verify=TLS) as client,
    ):
        for response in successes(fake, client, revision):
            assert response.status_code == 200, response.text
            validate(spec, response)
            seen.add((response.request.url.path, 200))
        for response in failures(fake, client, revision):
            validate(spec, response)
            seen.add((response.request.url.path, response.status_code))
        assert fake.internal_errors == []
    # Every operation in the spec answered 200 at least once, and every error status was seen.
    templates = [str(key) for key in spec.spec["paths"].keys()]  # noqa: SIM118 (a SchemaPath)
    for template in templates:
        pattern = re.compile(re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
        assert any(pattern.match(path) and status == 200 for path, status in seen), template
    assert {status for _, status in seen} == {200, 400, 401, 404, 429, 500, 503}


def test_sparse_job_fields_without_required_attributes(spec: OpenAPI) -> None:
    revision = revision_of(spec)
    with (
        serving(spec) as fake,
        httpx.Client(headers=fake.headers(revision), verify=TLS) as client,
    ):
        url = fake.url("item-update", fake.add_job("item-update"))
        response = client.get(url, params={"fields[catalog-item-bulk-update-job]": "errors"})
        assert response.status_code == 200
        validate(spec, response)


def test_naive_datetimes(spec: OpenAPI) -> None:
    revision = revision_of(spec)
    with (
        serving(spec) as fake,
        httpx.Client(headers=fake.headers(revision), verify=TLS) as client,
    ):
        job_id = fake.add_job("item-update", created_at="2022-11-08T00:00:00")
        validate(spec, client.get(fake.url("item-update", job_id)))


def test_defaults_match_the_committed_spec() -> None:
    document: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    assert document["info"]["version"] == DEFAULT_REVISION
    limits = {}
    for item in document["paths"].values():
        published = item["get"]["x-klaviyo-ratelimit"]
        limits[item["get"]["operationId"]] = tuple(
            parse_rate(v) for v in (published["burst"], published["steady"])
        )
    assert limits == dict(DEFAULT_RATE_LIMITS)
