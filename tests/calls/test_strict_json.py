"""`to_json()` is strict JSON and never raises, whatever the server sent: NaN and ±Infinity
(which Python's JSON reader accepts) are written as null, a lone surrogate is escaped so the
text encodes as UTF-8. The objects and `to_dict()` keep the exact values."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from klaviyo_catalog import Item
from klaviyo_catalog.testing import FakeKlaviyo, Fault

from tests.support import documents as docs
from tests.support.hardening_support import Mode, call, options


@pytest.fixture
def fake(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    return make_fake(rate_limits=None)


def get_job(mode: Mode, fake: FakeKlaviyo) -> Any:
    """get_item_update_job("J1", include=["items"]) through either client, no retries."""
    client_options = options(fake.base_url, fake.api_key, max_retries=0)
    return call(mode, client_options, "get_item_update_job", "J1", include=["items"])


def test_nan_and_infinity_are_null_in_json_and_kept_in_the_objects(
    mode: Mode, fake: FakeKlaviyo
) -> None:
    # Python's json.loads reads NaN and Infinity, which JSON text cannot hold.
    body = json.dumps(
        docs.single(
            docs.job("J1", linkage=["I1"], errors=[{"detail": "d", "meta": {"score": -math.inf}}]),
            [docs.item("I1", price=math.nan)],
        )
    ).encode()
    assert b"NaN" in body and b"-Infinity" in body
    fake.inject(Fault.body(200, body))
    job = get_job(mode, fake)
    item = (job.items or [])[0]
    assert isinstance(item, Item) and math.isnan(item.price or 0.0)
    assert math.isnan(item.to_dict()["price"]) and job.to_dict()["items"][0] == item.to_dict()
    as_json = json.loads(job.to_json(), parse_constant=pytest.fail)  # strict: no NaN in it
    assert as_json["items"][0]["price"] is None and as_json["errors"][0]["meta"]["score"] is None
    assert json.loads(item.to_json(), parse_constant=pytest.fail)["price"] is None
    assert job.errors[0].meta == {"score": -math.inf}  # the objects keep the exact values


def test_a_lone_surrogate_from_the_server_still_makes_utf8_json(
    mode: Mode, fake: FakeKlaviyo
) -> None:
    # "\ud800" in the JSON text: json.loads makes it a lone surrogate, which UTF-8 cannot encode.
    title = "caf\u00e9 \ud800"
    body = json.dumps(docs.single(docs.job("J1", linkage=["I1"]), [docs.item("I1", title)]))
    assert "\\ud800" in body
    fake.inject(Fault.body(200, body.encode()))
    job = get_job(mode, fake)
    item = (job.items or [])[0]
    assert isinstance(item, Item) and item.title == title  # the exact value
    job_text, item_text = job.to_json(), item.to_json()
    for text in (job_text, item_text):
        text.encode("utf-8")  # printable, writable: the surrogate is escaped as "\\ud800"
    assert json.loads(job_text)["items"][0]["title"] == json.loads(item_text)["title"] == title
