"""``python -m lathe_serving`` runs Lathe's model server."""

from .main import main

main()
