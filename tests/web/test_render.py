"""Pure pieces of the portal: banners, label colours, the chart, the co-signing summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from gateway.app_keys import SETTINGS
from gateway.config import load_settings
from gateway.oversight.activity import SPANS, Bucket, bucket_starts
from gateway.oversight.witnesses import cosignature_summary
from gateway.policy.labels import LevelScheme
from gateway.tlog.note import SIG_ED25519_COSIGNATURE, verifier_key
from web.portal.anchoring import configured_witnesses
from web.portal.chart import build_chart
from web.portal.render import banner_label, level_class, reason_text
from web.portal.security import local_target

SCHEME = LevelScheme()
NOTE = (
    "example.org/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
    "\u2014 example.org/log AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    "\u2014 witness.one AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
)


def test_the_banner_shows_the_highest_label_on_the_page() -> None:
    assert banner_label(SCHEME, []) == "UNCLASSIFIED"
    assert banner_label(SCHEME, ["CONFIDENTIAL", "secret//logistics"]) == "SECRET//LOGISTICS"
    assert (
        banner_label(SCHEME, ["SECRET//A//REL TO FRA, GBR", "CONFIDENTIAL//B//REL TO GBR"])
        == "SECRET//A/B//REL TO GBR"
    )
    # REL TO lists with nothing in common: level and compartments still show
    assert banner_label(SCHEME, ["SECRET//REL TO FRA", "TOP SECRET//REL TO JPN"]) == "TOP SECRET"


def test_levels_have_their_conventional_colour_classes() -> None:
    assert level_class("UNCLASSIFIED") == "lvl-unclassified"
    assert level_class("CONFIDENTIAL//X") == "lvl-confidential"
    assert level_class("SECRET//REL TO FRA") == "lvl-secret"
    assert level_class("top  secret//x") == "lvl-top-secret"
    assert level_class("RESTRICTED") == "lvl-other"


def test_the_chart_stacks_denials_on_grants_within_the_plot() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    buckets = [Bucket(start + timedelta(hours=i), i, i % 3) for i in range(24)]
    chart = build_chart(buckets, "%H:%M")
    assert len(chart.bars) == 24 and chart.granted == 276 and chart.denied == 24
    base = chart.top + chart.plot_height
    for bar in chart.bars:
        assert abs(bar.granted_y + bar.granted_height - base) < 0.02
        assert abs(bar.denied_y + bar.denied_height - bar.granted_y) < 0.02
        assert bar.denied_y >= chart.top - 0.01
    assert chart.y_ticks[-1].text == "50"  # a round ceiling above the peak of 25
    empty = build_chart([Bucket(start, 0, 0)], "%H:%M")
    assert empty.bars[0].granted_height == 0 and empty.y_ticks[-1].text == "4"


def test_buckets_end_at_the_next_whole_step() -> None:
    now = datetime(2026, 1, 1, 10, 20, tzinfo=UTC)
    starts = bucket_starts(now, SPANS["24h"])
    assert len(starts) == 24
    assert starts[-1] == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert starts[0] == datetime(2025, 12, 31, 11, 0, tzinfo=UTC)


def test_cosigning_is_described_for_people() -> None:
    bare = cosignature_summary(NOTE.split("\u2014 witness.one")[0], "example.org/log")
    assert bare.text == "no witnesses configured" and not bare.cosigned
    unconfigured = cosignature_summary(NOTE, "example.org/log")
    assert unconfigured.cosigners == ("witness.one",)
    assert "no witnesses configured here" in unconfigured.text
    configured = cosignature_summary(NOTE, "example.org/log", ["witness.one", "witness.two"], 1)
    assert configured.cosigned and configured.text == "co-signed by 1 of 2 witnesses (quorum 1)"
    short = cosignature_summary(NOTE, "example.org/log", ["witness.one", "witness.two"], 2)
    assert not short.cosigned


def test_only_local_paths_are_followed_after_sign_in() -> None:
    assert local_target("/documents?q=x") == "/documents?q=x"
    for target in ("https://evil.example/", "//evil.example", "/\\evil", "", None):
        assert local_target(target) == "/"


def test_configured_witnesses_come_from_the_ledger_settings(tmp_path: Path) -> None:
    vkeys = [
        verifier_key(f"witness.{n}", bytes([n]) * 32, sig_type=SIG_ED25519_COSIGNATURE)
        for n in (1, 2, 3)
    ]
    witnesses = [{"url": f"https://w{n}.example/", "vkey": v} for n, v in enumerate(vkeys)]
    environ = {"SEKISHO_DATA": str(tmp_path), "SEKISHO_LEDGER_WITNESSES": json.dumps(witnesses)}
    app = web.Application()
    app[SETTINGS] = load_settings(environ=environ)
    assert configured_witnesses(app) == (("witness.1", "witness.2", "witness.3"), 2)
    app[SETTINGS] = load_settings(environ={"SEKISHO_DATA": str(tmp_path)})
    assert configured_witnesses(app) == ((), 0)


def test_a_granted_row_shows_no_reason_and_refusals_say_why() -> None:
    assert reason_text("granted") == "\u2014"
    assert reason_text("level") == "level too low"
