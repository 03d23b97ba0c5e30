"""A fake Klaviyo for tests: every catalog bulk-job GET of the spec, stateful, over real HTTP.

    with FakeKlaviyo(rate_limits=[(5, 0.5)]) as fake:
        job_id = fake.add_job("item-update", total=3, polls_to_complete=3)
        fake.inject(Fault.status(503))
        httpx.get(fake.url("item-update", job_id), headers=fake.headers())  # 503, then 200s

It speaks HTTP only and needs nothing beyond the standard library, so it can test any client.
`VirtualClock` runs a client on virtual time: its retries and waits advance it, at once.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._clock import VirtualClock
    from ._fake import DEFAULT_API_KEY, FakeKlaviyo, JobOptions
    from ._faults import Fault
    from ._isolation import isolated_rate_limits
    from ._model import JobKind, Shape
    from ._ratelimit import DEFAULT_RATE_LIMITS
    from ._redis import REDIS_SERVER, RedisServer, running_redis_server
    from ._serving import RequestRecord

    DEFAULT_REVISION: str
    JOB_KINDS: tuple[JobKind, ...]

# Each name is imported from its module when first asked for (see __getattr__): the pytest
# plugin imports this package in every test session of every app that installs the library,
# and must not load the fake (its HTTP server, spec model and documents) until a test uses it.
_HOMES = {
    "DEFAULT_API_KEY": "._fake",
    "FakeKlaviyo": "._fake",
    "JobOptions": "._fake",
    "RequestRecord": "._serving",
    "Fault": "._faults",
    "isolated_rate_limits": "._isolation",
    "JobKind": "._model",
    "Shape": "._model",
    "DEFAULT_RATE_LIMITS": "._ratelimit",
    "REDIS_SERVER": "._redis",
    "RedisServer": "._redis",
    "running_redis_server": "._redis",
    "VirtualClock": "._clock",
}

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_RATE_LIMITS",
    "DEFAULT_REVISION",
    "JOB_KINDS",
    "REDIS_SERVER",
    "FakeKlaviyo",
    "Fault",
    "JobKind",
    "JobOptions",
    "RedisServer",
    "RequestRecord",
    "Shape",
    "VirtualClock",
    "isolated_rate_limits",
    "running_redis_server",
]


def __getattr__(name: str) -> Any:
    value: Any
    if name in ("DEFAULT_REVISION", "JOB_KINDS"):
        # The revision and the job kinds the fake serves by default: the generated package's.
        shape = import_module("._model", __name__).default_shape()
        value = shape.revision if name == "DEFAULT_REVISION" else shape.kinds
    elif name in _HOMES:
        value = getattr(import_module(_HOMES[name], __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
