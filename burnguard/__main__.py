"""``python -m burnguard``: the same as the ``burnguard`` command."""

from burnguard.cli import main

if __name__ == "__main__":  # not when a doctest run imports the package's modules
    main()
