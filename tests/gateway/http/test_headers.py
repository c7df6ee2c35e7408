"""The one Content-Disposition helper the API and the portal share."""

from __future__ import annotations

from gateway.http.headers import attachment


def test_attachment_keeps_a_safe_ascii_fallback_and_the_utf8_name() -> None:
    header = attachment('報告 "q";\\x.pdf')
    assert header.startswith('attachment; filename="')
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert all(32 <= ord(c) < 127 and c not in '"\\;' for c in fallback)
    assert header.endswith("filename*=UTF-8''%E5%A0%B1%E5%91%8A%20%22q%22%3B%5Cx.pdf")
