"""Entry point for ``pulumi up`` (``main: infra/`` in Pulumi.yaml)."""

import sys
from pathlib import Path

# Pulumi runs this directory as a script; make the repository root importable as well.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from infra import program  # noqa: E402

program.run()
