"""``python -m lathe_operator`` is the ``lathe`` command."""

import sys

from .cli import main

sys.exit(main())
