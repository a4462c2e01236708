"""kfp v2 components: one ``@dsl.component`` each, a thin shell around a plain step.

Imports live inside the bodies (kfp ships the function source to the pod); the pipelines
image already holds kfp and Lathe, so no package is installed at run time.
"""

import os

PIPELINE_IMAGE = os.environ.get("LATHE_PIPELINES_IMAGE", "ghcr.io/lathe-dev/lathe-pipelines:0.1.0")
