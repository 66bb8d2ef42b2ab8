"""Where the shared data lives: ``../shared`` beside the repository, or ``$BURNGUARD_SHARED``."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BURNGUARD_SHARED", REPO.parent / "shared"))
REAL_TRACE = SHARED / "data" / "mini-swe-agent-swebench.events.jsonl.gz"
