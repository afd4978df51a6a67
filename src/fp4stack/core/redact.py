"""Hide the credentials of every URL in a piece of text, the way pip shows them.

``https://user:token@host/simple`` becomes ``https://user:****@host/simple``, and a bare
``https://token@host/`` (a user name that is really a token) becomes ``https://****@host/``.
"""

from __future__ import annotations

import re

# The authority runs to the first "/", "?", "#" or blank; the greedy userinfo stops at its
# last "@", as URL parsers do, so a raw "@" inside a password is hidden too.
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#@]*(?:@[^\s/?#@]*)*)@"
)


def redact(text: str) -> str:
    """``text`` with the password (or lone user token) of each URL in it replaced by ****."""
    return _USERINFO.sub(_hide, text)


def _hide(match: re.Match[str]) -> str:
    user, has_password, _ = match["userinfo"].partition(":")
    return f"{match['scheme']}{user}:****@" if has_password else f"{match['scheme']}****@"
