"""Children's names: a parent's name cut to fit, joined with suffixes, always a valid DNS-1123 name.

A parent's name is a DNS-1123 subdomain (up to 253 characters, dots allowed); a child's must fit
63 characters (Job names become label values). Cutting a name can leave a dot at its end, and a
dot followed by the joining '-' is refused by the API server, so the cut drops trailing dots.
Every name that was valid before this rule is unchanged by it: a restarted operator finds the
children it made.
"""

from __future__ import annotations


def child(base: str, limit: int, *suffix: object) -> str:
    """``base`` cut to ``limit`` characters (trailing dots dropped), then each suffix after a '-'."""
    return "-".join([base[:limit].rstrip("."), *(str(s) for s in suffix)])
