"""The rationing of object refreshes for key labels a module does not list (pure)."""

from __future__ import annotations

from hsm.refresh import REFRESH_GAP_SECONDS, REFRESH_SECONDS, RefreshLimiter


def test_one_label_refreshes_at_most_once_per_interval() -> None:
    limiter = RefreshLimiter()
    assert limiter.allow("kek-v2", 100.0)
    asked = [limiter.allow("kek-v2", 100.0 + step / 10) for step in range(1, 50)]
    assert not any(asked)  # 4.9 s of asking again: no second refresh
    assert limiter.allow("kek-v2", 100.0 + REFRESH_SECONDS)


def test_unknown_labels_cannot_make_a_refresh_storm() -> None:
    """An attacker asking for a new label on every request gets one refresh per gap."""
    limiter = RefreshLimiter()
    now, allowed = 1000.0, 0
    for request in range(10_000):  # 100 requests a second for 100 s
        allowed += limiter.allow(f"no-such-key-{request}", now + request / 100)
    assert allowed <= 100 / REFRESH_GAP_SECONDS + 1
    assert limiter.remembered <= REFRESH_SECONDS / REFRESH_GAP_SECONDS + 1


def test_another_label_waits_for_the_gap_only() -> None:
    limiter = RefreshLimiter()
    assert limiter.allow("sign-a-v2", 10.0)
    assert not limiter.allow("sign-b-v1", 10.0 + REFRESH_GAP_SECONDS / 2)
    assert limiter.allow("sign-b-v1", 10.0 + REFRESH_GAP_SECONDS)
