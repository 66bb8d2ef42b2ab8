"""Secrets (the Slack token, PagerDuty routing keys) read from an environment variable or a file.

In a config file a secret is written as ``{env: NAME}`` or ``{file: /run/secrets/name}``, never as
the value itself; it is held as a :class:`pydantic.SecretStr`, which prints as ``**********`` in
reprs, logs and config dumps. Only the notifiers call ``get_secret_value()``, at the edge.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import SecretStr

__all__ = ["read_secret", "secret_from_config"]


def read_secret(*, env: str | None = None, file: str | Path | None = None) -> SecretStr:
    """The secret in environment variable ``env`` or in ``file`` (surrounding whitespace dropped).

    Errors name the variable or the file, never the value.
    """
    if (env is None) == (file is None):
        raise ValueError("give exactly one of env, file")
    if env is not None:
        value = os.environ.get(env)
        if not value or not value.strip():
            raise ValueError(f"environment variable {env} is not set or empty")
        return SecretStr(value.strip())
    path = Path(str(file))
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror or type(exc).__name__}") from None
    if not text:
        raise ValueError(f"secret file {path} is empty")
    return SecretStr(text)


def secret_from_config(value: Any) -> SecretStr:
    """Pydantic ``before`` validator body: ``{env: NAME}`` / ``{file: PATH}`` / an existing SecretStr."""
    if isinstance(value, SecretStr):
        return value
    if isinstance(value, dict) and set(value) in ({"env"}, {"file"}):
        return read_secret(env=value.get("env"), file=value.get("file"))
    raise ValueError("a secret is written {env: VARIABLE} or {file: PATH}, never inline")
