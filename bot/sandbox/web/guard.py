"""Which requests the sandbox page answers: its own, not another site's through your browser.

Anyone who can make your browser send a request to the page can act as any sandbox user, so
the page refuses what a browser would send on another site's behalf:

- **Host.** A page on ``attacker.example`` whose name then resolves to ``127.0.0.1`` (DNS
  rebinding) reaches the page as its own origin, and could read it and post to it. So the
  ``Host`` header must name the port the page listens on, and a host that is the page's:
  ``127.0.0.1``, ``localhost`` or ``[::1]``; the address or name it was told to bind; and,
  bound to every interface (``0.0.0.0``, ``::``), any IP address (a rebinding needs a
  name, and an IP address is nobody's name). A name other than those (``mybox.lan``)
  is refused: bind that name (``--host mybox.lan``) to be reached by it. A request
  with no ``Host`` header (HTTP/1.0) is answered, since no browser sends one.
- **Origin.** A browser says which page made a request in ``Origin``; when it is there, it
  must be the page's own (``http://`` and the ``Host`` the request was sent to).
- **JSON.** A ``POST`` body must be ``application/json`` (parameters such as ``charset``
  allowed). Another site's page can send a form or ``text/plain`` without asking first
  (``text/plain; application/json`` included), but JSON only after a preflight
  ``OPTIONS`` request, which the page refuses.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["Authority", "is_json", "parse_authority", "refusal"]

#: how an address is named: (host in lower case, without brackets; port)
Authority = tuple[str, int]

#: the names of this machine that no DNS answer can change
_LOCAL = frozenset({"localhost", "127.0.0.1", "::1"})
_EVERY_INTERFACE = frozenset({"", "0.0.0.0", "::"})


def is_json(content_type: str | None) -> bool:
    """Whether ``content_type``'s media type is exactly ``application/json``."""
    essence = (content_type or "").split(";", 1)[0]
    return essence.strip().lower() == "application/json"


def parse_authority(value: str, default_port: int = 80) -> Authority | None:
    """``host[:port]`` as an :data:`Authority`, or None when it is not one."""
    try:
        parts = urlsplit(f"http://{value}")
        port = parts.port
    except ValueError:
        return None
    if parts.netloc != value or "@" in value or not parts.hostname:
        return None
    return parts.hostname.lower(), default_port if port is None else port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _ours(authority: Authority, bound: Authority) -> bool:
    host, port = authority
    bound_host, bound_port = bound
    if port != bound_port:
        return False
    if host in _LOCAL or host == bound_host.lower():
        return True
    return bound_host in _EVERY_INTERFACE and _is_ip(host)


def refusal(host: str | None, origin: str | None, bound: Authority) -> tuple[int, str] | None:
    """Why the page refuses a request with these ``Host`` and ``Origin`` headers, as (HTTP
    status, message), or None when it answers it. ``bound`` is the address it listens on."""
    named = "127.0.0.1" if bound[0] in _EVERY_INTERFACE else bound[0]
    here = f"[{named}]:{bound[1]}" if ":" in named else f"{named}:{bound[1]}"
    if host is not None:
        authority = parse_authority(host)
        if authority is None or not _ours(authority, bound):
            return 421, (
                f"this page answers at {here} (or localhost:{bound[1]}), not at Host {host!r}: "
                "a name another site controls must not reach it"
            )
    if origin is not None:
        scheme, _, rest = origin.partition("://")
        authority = parse_authority(rest) if scheme.lower() == "http" else None
        if (
            authority is None
            or not _ours(authority, bound)
            or (host is not None and authority != parse_authority(host))
        ):
            return 403, (
                f"refused a request from the page at {origin!r}: only this page "
                f"(http://{host or here}) may act here, so other sites cannot act through "
                "your browser"
            )
    return None
