"""The environment variables the example configurations read, and the lines that set them to a sandbox's values.

One naming rule, ``<CONNECTOR>_<SETTING>`` in capitals (``ZOHO_REFRESH_TOKEN``), ties the three together: the
examples under ``config/examples/`` read these names, ``closeloop sandbox`` prints them with the values its
emulators accept, and a test checks that every name an example reads is one a sandbox prints.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping


def env_name(connector: str, setting: str) -> str:
    """The environment variable an example configuration reads a connector's setting from."""
    return f"{connector}_{setting}".upper()


def export_lines(connector: str, credentials: Mapping[str, str]) -> list[str]:
    """``export NAME=value`` lines (shell-quoted) that point an example configuration at a sandbox."""
    return [f"export {env_name(connector, key)}={shlex.quote(value)}" for key, value in credentials.items()]
