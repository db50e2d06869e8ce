"""The committed stubs are exactly what scripts/gen_protos.sh generates."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GENERATED = ROOT / "hodei" / "api" / "v1"


def test_regenerating_the_stubs_gives_no_diff(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen_protos.sh"), str(tmp_path)],
        check=True,
        env=env,
        timeout=120,
        capture_output=True,
    )
    fresh = tmp_path / "hodei" / "api" / "v1"
    names = sorted(p.name for p in fresh.iterdir() if p.suffix in (".py", ".pyi"))
    assert names, "the script generated nothing"
    committed = sorted(
        p.name for p in GENERATED.iterdir() if p.name.endswith(("_pb2.py", "_pb2.pyi", "_grpc.py"))
    )
    assert names == committed
    _, mismatch, errors = filecmp.cmpfiles(fresh, GENERATED, names, shallow=False)
    assert not errors
    assert not mismatch, f"stubs differ from proto/: {mismatch}; run scripts/gen_protos.sh"
