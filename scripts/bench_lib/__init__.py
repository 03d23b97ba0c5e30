"""Helpers of `scripts/bench.py` (`make bench`).

Named `bench_lib`, not `bench`: a package beside `scripts/bench.py` with the same name would
shadow it on import and make mypy skip one of the two.

- `common`: paths, JSON-line subprocess protocol, statistics, machine facts;
- `fake_server`: FakeKlaviyo in its own process, so that its CPU is never the client's;
- `redis_server`: a throwaway loopback redis-server;
- `workers`: the measured clients, each run in a fresh subprocess;
- `windows`: rate-limit analysis of the fake's request log;
- `report`: BENCHMARKS.md.
"""
