"""The pinned official SDKs still send what their committed captures say (scripts/sdk_drift.py),
and the comparison catches a changed, a missing and a new capture."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "sdk_drift.py"


def load_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("sdk_drift", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_names_each_drifted_request(tmp_path: Path) -> None:
    drift = load_script()
    committed, fresh = tmp_path / "openai-9.9.9", tmp_path / "fresh"
    committed.mkdir()
    fresh.mkdir()
    for folder, body in ((committed, {"model": "m", "temperature": 1}), (fresh, {"model": "m"})):
        (folder / "same.json").write_text(json.dumps({"body": {"a": 1}}))
        (folder / "changed.json").write_text(json.dumps({"body": body}))
    (committed / "gone.json").write_text("{}")
    (fresh / "added.json").write_text("{}")
    assert drift.compare(committed, fresh) == [
        "openai-9.9.9/gone.json: no longer captured",
        "openai-9.9.9/added.json: new capture, not committed",
        "openai-9.9.9/changed.json: the SDK's request changed",
    ]


def test_every_pin_has_captures_and_a_capture_script() -> None:
    drift = load_script()
    pins = drift.pins()
    assert set(pins) == set(drift.CAPTURES), "each pinned SDK has a capture script, and each script a pin"
    for dist, version in pins.items():
        folder, script, _ = drift.CAPTURES[dist]
        here = ROOT / "tests" / "fixtures" / folder / "sdk_requests"
        assert (here / script).is_file() and any((here / f"{dist}-{version}").glob("*.json")), dist


def test_the_pinned_sdks_still_send_the_captured_requests() -> None:
    """Installs the pinned SDKs (cached venv) and reruns every capture: about 50 s cold, 5 s warm."""
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=900,
                            check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "0 changed" in result.stdout
