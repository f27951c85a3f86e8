"""The command line: argument parsing (:mod:`.parser`), one module per command family, and :func:`main`.

Families: :mod:`.sync` (sync, plan, status, errors), :mod:`.config` (validate, schema), :mod:`.report`,
:mod:`.sandbox`, :mod:`.demo`; ``run`` starts :mod:`closeloop.daemon`. :mod:`.common` loads the configuration and
opens the store for them. Exit codes come from :mod:`closeloop.exitcodes` alone. Nothing below this package imports
it.
"""

from closeloop.cli.main import main
from closeloop.cli.parser import build_parser

__all__ = ["build_parser", "main"]
