"""Defang indicator values, so that no viewer, mail client or chat window turns them into links."""

from __future__ import annotations

import re

from ti_anomali.ecs.common import is_ip_address

# Schemes that viewers link, with the defanged spelling analysts know.
_DEFANGED_SCHEMES = {"http": "hxxp", "https": "hxxps", "ftp": "fxp", "ftps": "fxps"}
# A URI scheme of two letters or more, so that a Windows drive (`C:`) is left alone.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


def defang(value: str) -> str:
    """Return the value with `http` as `hxxp`, other schemes' colon as `[:]`, `.` as `[.]`, `@` as `[@]`.

    IP addresses are returned unchanged: no viewer links a bare address, and analysts copy them
    as they are. The result is still raw text, which the page must escape.
    """
    if is_ip_address(value):
        return value

    match = _SCHEME.match(value)
    if match is not None:
        scheme = match.group(1)
        defanged = _DEFANGED_SCHEMES.get(scheme.lower())
        prefix = f"{defanged}:" if defanged is not None else f"{scheme}[:]"
        value = prefix + value[match.end() :]
    return value.replace(".", "[.]").replace("@", "[@]")
