"""Every portal redirect stays on the site, after the normalisation browsers apply (#14).

Before the fix ``next=/\\t/evil.example`` was answered ``303 Location:
/\\t/evil.example`` (browsers drop the tab and follow ``//evil.example``) and a
``next`` with CR or LF signed the person in and then broke the connection.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.web.conftest import PASSWORD, Portal, csrf_of, person
from web.portal.security import local_target, see_other

ORIGIN = "https://sekisho.example"
OFF_SITE = [
    "https://evil.example/",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "\t//evil.example",
    " //evil.example",
    "/\\/evil.example",
    "javascript:alert(1)",
    "/%0d%0aSet-Cookie:x=1\r\nSet-Cookie: y=2",
    "/documents\r\nSet-Cookie: planted=1",
    "/\x00/evil.example",
    "",
    None,
]


def browser_follows(location: str) -> str:
    """Where a browser goes from ``ORIGIN`` (WHATWG: tabs and newlines dropped, \\ as /)."""
    cleaned = location.replace("\t", "").replace("\n", "").replace("\r", "").strip()
    return urljoin(ORIGIN + "/login", cleaned.replace("\\", "/"))


@pytest.mark.parametrize("target", OFF_SITE)
def test_off_site_and_malformed_targets_go_home(target: str | None) -> None:
    assert local_target(target) == "/"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/documents?q=x", "/documents?q=x"),
        ("/documents/abc#check", "/documents/abc#check"),
        ("/documents?q=été", "/documents?q=%C3%A9t%C3%A9"),
        ("/documents?q=a b", "/documents?q=a%20b"),
        ("/%09/evil.example", "/%09/evil.example"),  # an encoded tab stays a path here
    ],
)
def test_local_paths_are_kept_and_encoded(target: str, expected: str) -> None:
    assert local_target(target) == expected
    assert urlsplit(browser_follows(expected)).netloc == "sekisho.example"


def test_every_redirect_response_stays_on_the_site() -> None:
    for target in OFF_SITE:
        location = see_other(target or "").headers["Location"]
        assert urlsplit(browser_follows(location)).netloc == "sekisho.example"


@pytest.mark.parametrize(
    "target", ["/\t/evil.example", "/documents\r\nSet-Cookie: planted=1", "/\\/evil.example"]
)
async def test_sign_in_with_a_crafted_next_lands_at_home(portal: Portal, target: str) -> None:
    await person("alice")
    client = portal.client
    page = await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "csrf": csrf_of(await page.text()),
            "username": "alice",
            "password": PASSWORD,
            "next": target,
        },
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/"
    assert "planted" not in response.headers.getall("Set-Cookie", [""])[0]


async def test_the_login_form_never_carries_an_off_site_next(portal: Portal) -> None:
    page = await portal.client.get("/login", params={"next": "/\t/evil.example"})
    assert page.status == 200
    assert "evil.example" not in await page.text()


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("/\\\t\r\n :@.?#%évil\x00\x7f"), max_size=24))
def test_any_target_stays_on_the_site(target: str) -> None:
    location = local_target(target)
    assert location.startswith("/") and location.isascii() and location.isprintable()
    assert urlsplit(browser_follows(location)).netloc == "sekisho.example"
