"""The agent's wait after a failed upload: the server's Retry-After when it names one (a
failover's 503, a limit's 429), spread and capped; else the doubling backoff with jitter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratepad.agent.upload import UploadError, next_delay, retry_after


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("5", 5.0), ("0", 0.0), ("2.5", 2.5), (None, None), ("", None), ("soon", None),
     ("-1", None), ("Wed, 21 Oct 2026 07:28:00 GMT", None), ("1e9", None)],
)  # fmt: skip
def test_retry_after_reads_delay_seconds(header: str | None, seconds: float | None) -> None:
    assert retry_after(header) == seconds


@given(
    after=st.floats(0, 86_000),
    backoff=st.floats(0.5, 60),
    cap=st.floats(1, 300),
    jitter=st.floats(0, 0.999),
)
def test_the_server_s_retry_after_is_honoured_up_to_the_cap(
    after: float, backoff: float, cap: float, jitter: float
) -> None:
    exc = UploadError("server answered 503", status=503, retry_after=after)
    delay = next_delay(exc, backoff, cap, jitter)
    assert delay == min(after * (1 + jitter / 2), cap)
    assert min(after, cap) <= delay <= min(after * 1.5, cap)


@given(backoff=st.floats(0.5, 60), cap=st.floats(1, 300), jitter=st.floats(0, 0.999))
def test_without_retry_after_the_backoff_is_jittered(
    backoff: float, cap: float, jitter: float
) -> None:
    failed = next_delay(UploadError("cannot reach"), backoff, cap, jitter)
    assert min(backoff, cap) / 2 <= failed <= min(backoff, cap)
    refused = next_delay(UploadError("401", refused=True, status=401), backoff, cap, jitter)
    assert cap / 2 <= refused <= cap  # a refusal waits long: retrying fast changes nothing
