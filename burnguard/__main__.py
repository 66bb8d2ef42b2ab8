"""``python -m burnguard``: the same as the ``burnguard`` command."""

from burnguard.cli import main

main()
