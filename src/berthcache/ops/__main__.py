"""``python -m berthcache.ops`` runs the CLI (same as ``berthcache-ops``)."""

from berthcache.ops.cli import main

main()
