"""Capture the official SDKs' requests again and compare them with the committed captures.

    python scripts/sdk_drift.py            # exit 0: the pinned SDKs still send what we captured

The SDK-parity tests compare our request bodies with captures of the official SDKs
(``tests/fixtures/<provider>/sdk_requests/<sdk>-<version>/``), made by a capture script beside
them. This script installs the versions pinned in ``tests/sdk-requirements.txt`` into a venv of
their own (never the project's: the SDKs are not dependencies), reruns every capture script into a
scratch folder and diffs the result with the committed files. So raising a pin to a new SDK
release fails here, naming each request that changed, until the captures are refreshed and the
parity tests pass against them. The venv is cached per requirements file under
``~/.cache/llm-connectors/sdk-venvs``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "tests" / "sdk-requirements.txt"
FIXTURES = ROOT / "tests" / "fixtures"
#: distribution -> (fixtures folder, capture script, environment for the script)
CAPTURES: dict[str, tuple[str, str, dict[str, str]]] = {
    "anthropic": ("claude", "capture_sdk_requests.py", {"CAPTURE_MODEL": "claude-sonnet-4-6"}),
    "openai": ("openai", "capture.py", {}),
    "mistralai": ("mistral", "capture.py", {}),
    "ollama": ("ollama", "capture.py", {}),
    "google-genai": ("gemini", "capture.py", {}),
}
#: Further capture sets of one SDK (Azure OpenAI is the openai SDK's AzureOpenAI client).
ALSO: dict[str, tuple[tuple[str, str, dict[str, str]], ...]] = {"openai": (("azure_openai", "capture.py", {}),)}
EXTRA_TOOLS = ("respx",)  # the ollama capture mocks its client with respx
SCRUBBED = ("ANTHROPIC_", "OPENAI_", "AZURE_OPENAI_", "MISTRAL_", "OLLAMA_", "GEMINI_", "GOOGLE_")


def pins() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            if not version:
                raise SystemExit(f"{REQUIREMENTS.name}: pin every SDK with ==, got {line!r}")
            out[name.strip()] = version.strip()
    return out


def sdk_python() -> Path:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llm-connectors" / "sdk-venvs" / digest
    python = home / "bin" / "python"
    stamp = home / ".installed"
    if not stamp.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
        result = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                                 str(REQUIREMENTS), *EXTRA_TOOLS], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"installing the pinned SDKs failed:\n{result.stderr[-3000:]}")
        stamp.touch()
    return python


def compare(committed: Path, fresh: Path) -> list[str]:
    problems: list[str] = []
    old = {p.name for p in committed.glob("*.json")}
    new = {p.name for p in fresh.glob("*.json")}
    problems += [f"{committed.name}/{name}: no longer captured" for name in sorted(old - new)]
    problems += [f"{committed.name}/{name}: new capture, not committed" for name in sorted(new - old)]
    for name in sorted(old & new):
        before = json.loads((committed / name).read_text(encoding="utf-8"))
        after = json.loads((fresh / name).read_text(encoding="utf-8"))
        if before != after:
            problems.append(f"{committed.name}/{name}: the SDK's request changed")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    python = sdk_python()
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
    problems: list[str] = []
    checked = 0
    for dist, version in pins().items():
        if dist not in CAPTURES:
            problems.append(f"{dist}: pinned in {REQUIREMENTS.name} but no capture script is known")
            continue
        for folder, script, extra_env in (CAPTURES[dist], *ALSO.get(dist, ())):
            here = FIXTURES / folder / "sdk_requests"
            committed = here / f"{dist}-{version}"
            if not committed.is_dir():
                problems.append(f"{dist}=={version}: no captures in {committed.relative_to(ROOT)}; run {script}")
                continue
            with tempfile.TemporaryDirectory() as scratch:
                fresh = Path(scratch) / committed.name
                result = subprocess.run([str(python), str(here / script), str(fresh)], cwd=here,
                                        env={**env, **extra_env}, capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    problems.append(f"{dist}=={version}: {script} failed:\n{result.stderr[-2000:]}")
                    continue
                found = compare(committed, fresh)
            checked += len(list(committed.glob("*.json")))
            problems += found
    for line in problems:
        print("drift:", line, file=sys.stderr)
    print(f"{checked} captured requests checked against {len(pins())} pinned SDKs; {len(problems)} changed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
