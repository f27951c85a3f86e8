"""The exit codes of every command, in one place (the CLI's contract with ops scripts)."""

from __future__ import annotations

EXIT_OK = 0
"""Everything ran."""
EXIT_QUARANTINED = 1
"""A sync ran to its end, and some records are in quarantine (`closeloop errors`)."""
EXIT_USAGE = 2
"""Bad usage or configuration: unknown option or connection, invalid config, credentials refused, a mapped
field the vendor does not have, a state store in use by another instance."""
EXIT_UNREACHABLE = 3
"""A system could not be reached or used: network, TLS, persistent 5xx or 429, API budget spent, a request the
vendor refused."""
EXIT_INTERNAL = 4
"""A bug in closeloop or a connector; the log holds the details."""
EXIT_INTERRUPTED = 130
"""Stopped by SIGINT/SIGTERM before the run finished."""

EXIT_CODES_TEXT = (
    f"Exit codes: {EXIT_OK} ok, {EXIT_QUARANTINED} ran with quarantined records, {EXIT_USAGE} bad usage or "
    f"configuration (credentials refused included), {EXIT_UNREACHABLE} cannot reach or use a system, "
    f"{EXIT_INTERNAL} internal error, {EXIT_INTERRUPTED} interrupted."
)
"""The summary ``closeloop --help`` ends with."""
