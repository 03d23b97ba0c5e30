"""A fake Klaviyo for tests: the five catalog bulk-job GETs, stateful, over real HTTP.

    with FakeKlaviyo(rate_limits=[(5, 0.5)]) as fake:
        job_id = fake.add_job("item-update", total=3, polls_to_complete=3)
        fake.inject(Fault.status(503))
        httpx.get(fake.url("item-update", job_id), headers=fake.headers())  # 503, then 200s

It speaks HTTP only and needs nothing beyond the standard library, so it can test any client.
"""

from ._fake import DEFAULT_API_KEY, FakeKlaviyo, JobOptions, RequestRecord
from ._faults import Fault
from ._isolation import isolated_rate_limits
from ._model import JobKind, Shape, default_shape
from ._ratelimit import DEFAULT_RATE_LIMITS
from ._redis import REDIS_SERVER, RedisServer, running_redis_server

# The revision and the job kinds the fake serves by default: the generated package's.
DEFAULT_REVISION = default_shape().revision
JOB_KINDS = default_shape().kinds

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
    "isolated_rate_limits",
    "running_redis_server",
]
