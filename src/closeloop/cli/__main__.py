"""``python -m closeloop.cli``: the same as the ``closeloop`` console script."""

import sys

from closeloop.cli.main import main

sys.exit(main())
