"""The SDK imports with aiokafka and pydantic only: nothing else from this repo or its server deps."""

from __future__ import annotations

import json
import subprocess
import sys

#: what an agent may need besides the stdlib: aiokafka, pydantic and their own dependencies
ALLOWED = {
    "burnguard_sdk", "aiokafka", "async_timeout", "packaging", "typing_extensions",
    "pydantic", "pydantic_core", "annotated_types", "typing_inspection",
    "cython_runtime",  # not a package: the module Cython creates when aiokafka's compiled parts load
}  # fmt: skip
SERVER_SIDE = {"schemas", "streams", "detectors", "alerting", "burnguard", "orjson", "faust", "mode",
               "river", "genai_prices", "typer", "rich", "yaml"}  # fmt: skip


def test_import_loads_only_stdlib_aiokafka_and_pydantic() -> None:
    probe = (
        "import json, sys; import burnguard_sdk; from burnguard_sdk import *;"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True, cwd="/")
    loaded = set(json.loads(out.stdout))
    assert "burnguard_sdk" in loaded and "aiokafka" in loaded and "pydantic" in loaded
    assert not loaded & SERVER_SIDE
    foreign = {m for m in loaded - set(sys.stdlib_module_names) - ALLOWED if not m.startswith("_")}
    assert foreign == set()
