"""What officers look at is ledgered: one ``oversight.viewed`` entry per view, filters kept."""

from __future__ import annotations

from tests.web.conftest import Portal, form_token, ledger_entries, person, sign_in
from web.portal.app_keys import PORTAL


async def test_each_officer_view_is_one_ledger_entry_with_its_filters(portal: Portal) -> None:
    await person("olivia", level="TOP SECRET", roles=("reader", "officer"))
    await sign_in(portal.client, "olivia")
    odd_name = "x" * 120  # longer than an entry keeps verbatim
    views = [
        ("/officer/trail?person=alice&outcome=denied", "trail"),
        (f"/officer/trail?person={odd_name}", "trail"),
        ("/officer/trail.csv?person=alice", "trail.export"),
        ("/officer/trail.json?outcome=granted", "trail.export"),
        ("/officer/alerts?period=7d", "alerts"),
        ("/officer/activity?span=30d", "activity"),
    ]
    for path, _ in views:
        response = await portal.client.get(path)
        await response.read()
    entries = await ledger_entries(portal.app, "oversight.viewed")
    assert [e["view"] for e in entries] == [view for _, view in views]
    assert {e["actor"] for e in entries} == {"person:olivia"}
    assert entries[0]["filters"] == {
        "actor": "person:alice",
        "outcome": "denied",
        "format": "json",
        "limit": "50",
    }
    odd = entries[1]["filters"]["actor"]
    assert odd.startswith("sha256:") and len(odd) == 39
    assert entries[2]["filters"]["as"] == "csv"
    assert entries[4]["filters"] == {"period": "7d"}


async def test_a_whole_ledger_verification_run_is_ledgered(portal: Portal) -> None:
    await person("olivia", level="TOP SECRET", roles=("reader", "officer"))
    await sign_in(portal.client, "olivia")
    token = await form_token(portal.client, "/officer/ledger")
    started = await portal.client.post(
        "/officer/ledger/verify", data={"csrf": token}, allow_redirects=False
    )
    assert started.status == 303
    await portal.app[PORTAL].verifier.wait()
    entries = await ledger_entries(portal.app, "oversight.viewed")
    assert [(e["actor"], e["view"], e["filters"]) for e in entries] == [
        ("person:olivia", "ledger.verify", {"run": "1"})
    ]
