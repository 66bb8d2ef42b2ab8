"""Command groups of the ``burnguard`` command line, one module each; ``burnguard.cli`` mounts them."""
