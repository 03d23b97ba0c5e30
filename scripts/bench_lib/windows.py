"""Rate-limit figures from the fake's request log: window maxima and quota utilisation."""

from __future__ import annotations

import math
from collections.abc import Sequence

from scripts.bench_lib.common import Json

LogEntry = tuple[float, int | None, bool]  # (monotonic time, status, counted against quota)


def max_in_window(times: Sequence[float], width: float) -> int:
    """The most admissions inside any half-open window [t, t + width) (times sorted)."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def max_in_fixed_window(times: Sequence[float], width: float) -> int:
    """The most admissions in one fixed window as Klaviyo (and the fake) count them: a window
    opens at the first request after the previous one ended (times sorted)."""
    best, start, count = 0, -math.inf, 0
    for t in times:
        if t >= start + width:
            start, count = t, 0
        count += 1
        best = max(best, count)
    return best


def admissible(duration: float, limits: Sequence[tuple[int, float]]) -> int:
    """The most requests Klaviyo's fixed windows admit in `duration` seconds, to an ideal
    client that sends instantly whenever a window has room (windows open at the first
    request). With (350/1 s, 3500/60 s) and 75 s: 3500 + 3500 = 7000."""
    (burst, burst_s), (steady, steady_s) = sorted(limits, key=lambda rate: rate[1])
    total, start = 0, 0.0
    while start < duration:
        length = min(steady_s, duration - start)
        total += min(steady, burst * math.ceil(length / burst_s))
        start += steady_s
    return total


def analyse(log: Sequence[LogEntry], duration: float, limits: Sequence[tuple[int, float]]) -> Json:
    admitted = sorted(t for t, status, counted in log if status == 200 and counted)
    throttled = sum(1 for _, status, _ in log if status == 429)
    others = sum(1 for _, status, _ in log if status not in (200, 429))
    (burst, burst_s), (steady, steady_s) = sorted(limits, key=lambda rate: rate[1])
    out: Json = {
        "ok": len(admitted),
        "throttled": throttled,
        "other_statuses": others,
        "duration_s": duration,
        "admissible": admissible(duration, limits),
        "max_burst_window": max_in_window(admitted, burst_s),
        "max_steady_window": max_in_window(admitted, steady_s),
        "max_fixed_burst_window": max_in_fixed_window(admitted, burst_s),
        "max_fixed_steady_window": max_in_fixed_window(admitted, steady_s),
        "burst_limit": burst,
        "steady_limit": steady,
    }
    out["utilisation"] = out["ok"] / out["admissible"] if out["admissible"] else float("nan")
    if admitted:
        first = admitted[0]
        out["first_window_ok"] = sum(1 for t in admitted if t < first + steady_s)
        out["first_window_expected"] = min(steady, burst * math.ceil(min(steady_s, duration)))
        out["span_s"] = admitted[-1] - first
        later = [t for t in admitted if t >= first + steady_s]
        # How soon after the steady window reopened the next request got through.
        out["resume_after_s"] = later[0] - (first + steady_s) if later else None
    return out
