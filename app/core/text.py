"""What counts as text here: no NUL and no unpaired UTF-16 surrogate.

Neither survives the way out: PostgreSQL refuses NUL in text, and a lone surrogate (half of an
emoji, as JSON "\\ud83d" can carry) cannot be encoded as UTF-8, so a page or JSON answer holding
one fails. Input is refused with `problem`; text stored before that rule is shown with `readable`.
"""

from __future__ import annotations

import re

_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def problem(value: str) -> str | None:
    """Why `value` is not text we accept, or None when it is."""
    found = _NOT_TEXT.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character, which text cannot hold"
    return "contains half of a character (an unpaired UTF-16 surrogate); please retype it"


def readable(value: str) -> str:
    """`value` with each lone surrogate replaced by U+FFFD, so that it can be shown."""
    if _SURROGATE.search(value) is None:
        return value
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
