"""redact_index_url: pure string logic (issue 11 item 11, credentials by reference)."""

from __future__ import annotations

import pytest

from nbdeploy.specs.credentials import redact_index_url


@pytest.mark.parametrize(("url", "expected"), [
    ("https://user:s3cr%40t@pypi.example.com/simple", "https://pypi.example.com/simple"),
    ("https://__token__:pypi-AgEI@upload.example.com:8443/simple/?a=1#f", "https://upload.example.com:8443/simple/?a=1#f"),
    ("https://TOKEN@gitlab.example.com/api/v4/projects/1/packages/pypi/simple",
     "https://gitlab.example.com/api/v4/projects/1/packages/pypi/simple"),
    ("http://u:p@[::1]:3141/root/pypi/+simple/", "http://[::1]:3141/root/pypi/+simple/"),
    ("https://u:p@a@host.example.com/simple", "https://host.example.com/simple"),  # '@' in an unquoted password
])
def test_credentials_are_removed(url: str, expected: str) -> None:
    assert redact_index_url(url) == (expected, True)


@pytest.mark.parametrize("url", [
    "https://pypi.org/simple",
    "http://[::1]:3141/root/pypi/+simple/",
    "https://pypi.example.com/simple/user@example",  # '@' in the path is not user info
    "/srv/wheels",
    "file:///srv/wheels",
    "",
])
def test_urls_without_credentials_are_unchanged(url: str) -> None:
    assert redact_index_url(url) == (url, False)


def test_not_a_string() -> None:
    with pytest.raises(TypeError):
        redact_index_url(None)  # type: ignore[arg-type]
