"""``python -m lathe_pipelines ingest|train|score|bundle``: the run commands, as the pipelines image runs them."""

import sys

from .cli import main

sys.exit(main())
