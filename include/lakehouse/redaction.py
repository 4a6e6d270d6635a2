"""Keeping secrets out of what we print: webhook URLs carry their token in the path or query
(Slack `/services/T../B../<token>`, PagerDuty or any receiver's `?key=`), so a URL is shown
as `scheme://host/…` only. Used for logs, channel errors and the demo summary; never for the
value actually sent.
"""

from __future__ import annotations

import re

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:[^\s/@'\"<>]*@)?(?P<host>[^\s/?#'\"<>]+)"
                  r"(?P<rest>[/?#][^\s'\"<>]*)?")
_PATH_AFTER_URL_WORD = re.compile(r"(url: )/[^\s'\"<>)]*")  # requests: "Max retries exceeded with url: /services/…"


def redact_url(url: str | None) -> str:
    """`https://hooks.slack.com/services/T0/B0/secret` -> `https://hooks.slack.com/…`."""
    return redact_urls(url or "")


def redact_urls(text: str, secrets: tuple[str | None, ...] = ()) -> str:
    """Every URL in `text` cut to scheme://host/… (user:password@ dropped), paths quoted after
    `url:` cut too, and any of `secrets` (configured URLs, keys) replaced wherever they appear."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, redact_url(secret) if "://" in secret else "…")
    text = _URL.sub(lambda m: f"{m['scheme']}://{m['host']}" + ("/…" if m["rest"] and m["rest"] != "/" else m["rest"] or ""),
                    text)
    return _PATH_AFTER_URL_WORD.sub(r"\1/…", text)


__all__ = ["redact_url", "redact_urls"]
