"""The facade builds each request from the generated operation table; it must be exactly the
request the generated endpoint function would build, for every operation.

This is the one place that calls the generated functions' private `_get_kwargs` (the generator
is pinned): it is how a request can be compared without sending it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any

import pytest
from klaviyo_catalog import InvalidRequestError
from klaviyo_catalog._operations import operation
from klaviyo_catalog_api.catalog_spec import OPERATIONS, REVISION

JOB_IDS = ["01J7N59PCST6753B8VJYATBJDT", "a/b?c=d#e+f", "ünïcode id", "%2F.."]


def cases(name: str) -> list[dict[str, Any]]:
    spec = OPERATIONS[name]
    job_type = spec.job_type
    base: list[dict[str, Any]] = [{}]
    first_fields = {json_type: list(names[:2]) for json_type, names in spec.fields.items()}
    base.append({"fields": first_fields})
    if spec.include:
        base.append({"include": list(spec.include), "fields": {job_type: ["status"]}})
    if spec.is_list:
        base += [
            {"status": "processing"},
            {"cursor": "b2Zmc2V0+/=&x=1"},
            {"status": "queued", "cursor": "c", "fields": first_fields},
        ]
        return base
    return [{**case, "job_id": job_id} for case in base for job_id in JOB_IDS]


@functools.cache
def keyword_of(name: str) -> dict[str, str]:
    """Wire name -> keyword of the generated function, found by sending a probe through each."""
    module = importlib.import_module(f"klaviyo_catalog_api.api.catalog_jobs.{name}")
    path = {"job_id": "x"} if "job_id" in inspect.signature(module._get_kwargs).parameters else {}
    found = {}
    for keyword in inspect.signature(module._get_kwargs).parameters:
        if keyword not in ("job_id", "revision"):
            params = module._get_kwargs(**path, revision="r", **{keyword: "probe"})["params"]
            found.update({wire: keyword for wire, value in params.items() if value == "probe"})
    return found


def test_every_query_parameter_of_the_table_reaches_the_wire() -> None:
    for name, spec in OPERATIONS.items():
        assert sorted(keyword_of(name)) == sorted(spec.query), name


def generated_kwargs(name: str, arguments: dict[str, Any], params: dict[str, str]) -> Any:
    module = importlib.import_module(f"klaviyo_catalog_api.api.catalog_jobs.{name}")
    keywords = {keyword_of(name)[wire]: value for wire, value in params.items()}
    if "job_id" in arguments:
        keywords["job_id"] = arguments["job_id"]
    return module._get_kwargs(revision=REVISION, **keywords)


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_requests_equal_the_generated_functions(name: str) -> None:
    for arguments in cases(name):
        parts, _ = operation(name).build(revision=REVISION, **arguments)
        expected = generated_kwargs(name, arguments, dict(parts.params))
        assert parts.method == expected["method"].upper()
        assert parts.path == expected["url"], arguments
        assert dict(parts.params) == expected["params"]
        assert dict(parts.headers) == expected["headers"]


def test_a_list_parameter_on_a_single_job_operation_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="does not take page"):
        operation("get_item_update_job").build(revision=REVISION, job_id="x", cursor="c")
