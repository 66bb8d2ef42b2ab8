"""``python -m burnguard``: the same as the ``burnguard`` command."""

from burnguard.cli import app

if __name__ == "__main__":  # not when a doctest run imports the package's modules
    app(prog_name="burnguard")
