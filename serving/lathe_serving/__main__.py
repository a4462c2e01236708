"""``python -m lathe_serving`` runs Lathe's model server."""

from .server import main

main()
