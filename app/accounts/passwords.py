"""The password rule (OWASP ASVS 5.0, 6.2): long enough, not common, no composition rules.

- At least 12 characters and up to 1024 (passphrases welcome; paste is never blocked).
- Not one of the 30,000 most common passwords. The list is the one zxcvbn bundles (the
  "passwords" frequency list, from Mark Burnett's 10-million-password leak corpus): a maintained
  package, so no list of our own to keep fresh, and its estimator comes with it.
- zxcvbn's estimate must reach 3 of 4 ("safely unguessable"), so `aaaaaaaaaaaa` or
  `qwertyuiopas` fail although they are long; and it must not be made of the person's own
  email, name or clinic name (`riverside-okafor-2026`).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 12
MAX_LENGTH = 1024
MIN_SCORE = 3
# zxcvbn refuses longer input; a passphrase whose first 72 characters are strong is strong.
_ESTIMATED_CHARS = 72


@cache
def _common_passwords() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common(password: str) -> bool:
    return password.lower() in _common_passwords()


def password_problem(password: str, *, context: Iterable[str] = ()) -> str | None:
    """Why this password is refused, in words for the person choosing it; None when it is fine."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters; a few words together work well."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if is_common(password):
        return "This is one of the most common passwords; choose another."
    words = [w for item in context for w in _words(item)]
    estimate = zxcvbn(password[:_ESTIMATED_CHARS], user_inputs=words)
    if words and _only_personal(password[:_ESTIMATED_CHARS], estimate["sequence"]):
        return (
            "This is made of your name, email or clinic, which are guessed first; "
            "add words of your own."
        )
    if estimate["score"] < MIN_SCORE:
        warning = estimate["feedback"].get("warning") or "This password is easy to guess."
        return f"{warning.rstrip('.')}. Add another word or two; uncommon words are better."
    return None


def _only_personal(password: str, sequence: list[dict[str, object]]) -> bool:
    """Whether, without the parts zxcvbn found in the person's own details, fewer than four
    letters remain (`riverside-okafor`, `ada-okafor-2026`)."""
    rest = "".join(
        str(m["token"])
        for m in sequence
        if not (m.get("pattern") == "dictionary" and m.get("dictionary_name") == "user_inputs")
    )
    return len(rest) < len(password) and sum(ch.isalpha() for ch in rest) < 4


def _words(text: str) -> list[str]:
    """An email or name split into the pieces someone might build a password from."""
    lowered = text.lower()
    pieces = [lowered]
    for sep in "@.-_ ":
        pieces = [p for piece in pieces for p in piece.split(sep)]
    return [lowered, *(p for p in pieces if len(p) >= 3)]
