import os
import shutil
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).parent))
ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SHIPPED = ("models", "recipes", "data/demo")  # what the wheel carries besides the modules
# PROBEKIT_WHEEL_TEST=1 (make test-current): the wheel is installed into a fresh virtual
# environment, and the demo that the tests read is run by that installation, outside the
# checkout, as the README's quick start says (one demo run per leg, not two)
WHEEL_TEST = os.environ.get("PROBEKIT_WHEEL_TEST") == "1"
QUICK_START = ["probekit", "run", "demo", "--out", "runs/demo"]  # checked against the README


def run_recipe(name, tmp_path_factory):
    """A shipped recipe run once: (output folder, the finished process)."""
    out = tmp_path_factory.mktemp(name)
    done, _ = run_checked([sys.executable, "-m", "probekit.run",
                           str(ROOT / f"recipes/{name}.yaml"), "--out", str(out), "--quiet"],
                          ROOT, os.environ.copy())
    return out, done


def run_checked(cmd: list[str], cwd: Path, env: dict, timeout: int = 900
                ) -> tuple[subprocess.CompletedProcess, float]:
    """``cmd`` run to success (else the test fails with its output): (process, seconds)."""
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    took = time.perf_counter() - start
    assert out.returncode == 0, (f"{' '.join(map(str, cmd))} exited {out.returncode}:\n"
                                 f"{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return out, took


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """A wheel built (offline, with this environment's setuptools) from a copy of the checkout,
    so that no build/ or egg-info is left there and no stale file from it gets in."""
    need = next(Requirement(r) for r in PYPROJECT["build-system"]["requires"]
                if r.startswith("setuptools"))
    have = Version(metadata.version("setuptools"))
    if not need.specifier.contains(have):
        pytest.skip(f"setuptools {have} here, the build needs {need} (the locks pin it: rebuild "
                    "this environment with make setup / make setup-current)")
    tmp = tmp_path_factory.mktemp("wheel")
    copy = tmp / "probekit"
    copy.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info", "_resources")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "LICENSE", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    for folder in ("src", *SHIPPED):
        shutil.copytree(ROOT / folder, copy / folder, ignore=ignore)
    out, took = run_checked([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                             "--no-build-isolation", "-w", str(tmp / "dist"), str(copy)],
                            tmp, os.environ.copy(), timeout=300)
    print(f"\nwheel built in {took:.1f} s")
    name = PYPROJECT["project"]["name"].replace("-", "_")
    (built,) = (tmp / "dist").glob(f"{name}-*.whl")
    return built


def outside_env() -> dict:
    """This process's environment variables without what points into the checkout."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PROBEKIT_MODELS", "VIRTUAL_ENV")}


@pytest.fixture(scope="session")
def installed_wheel(wheel, tmp_path_factory) -> tuple[Path, Path, dict]:
    """(the fresh virtual environment, a work folder outside the checkout, the environment
    variables to run in it) with the wheel installed; only with PROBEKIT_WHEEL_TEST=1."""
    if not WHEEL_TEST:
        pytest.skip("installs the wheel into a fresh virtual environment (about a minute with "
                    "pip's cache): set PROBEKIT_WHEEL_TEST=1 (make test-current does)")
    tmp = tmp_path_factory.mktemp("installed")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # this environment's pip installs into the fresh one, resolving pyproject's dependencies
    # within the current lock (a bound that the lock does not satisfy fails here)
    _, took = run_checked([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                           "install", "-q", "-c", str(ROOT / "requirements" / "current.lock"),
                           str(wheel)], tmp, os.environ.copy(), timeout=1800)
    print(f"\nwheel installed with its dependencies in {took:.1f} s")
    work = tmp / "work"
    work.mkdir()
    return venv, work, outside_env()


@pytest.fixture(scope="session")
def demo_run(request, tmp_path_factory):
    """The shipped demo recipe, run once per session: by the checkout
    (``python -m probekit.run recipes/demo.yaml``), or, with PROBEKIT_WHEEL_TEST=1, by the
    installed wheel as the README's quick start runs it (``probekit run demo --out runs/demo``,
    in a folder outside the checkout)."""
    if not WHEEL_TEST:
        return run_recipe("demo", tmp_path_factory)
    venv, work, env = request.getfixturevalue("installed_wheel")
    done, _ = run_checked([str(venv / "bin" / QUICK_START[0]), *QUICK_START[1:], "--quiet"],
                          work, env)
    return work / "runs" / "demo", done


def rerun_demo(demo_run, *extra: str) -> subprocess.CompletedProcess:
    """The command that made ``demo_run`` again, as it ran (the same data files: a copy with
    other modification times is other data), with ``extra`` arguments."""
    out, done = demo_run
    cwd, env = (out.parent.parent, outside_env()) if WHEEL_TEST else (ROOT, None)
    return subprocess.run([*done.args, *extra], capture_output=True, text=True, timeout=900,
                          cwd=cwd, env=env)


@pytest.fixture(scope="session")
def beyond_run(tmp_path_factory):
    """recipes/beyond.yaml (code switching, length bins, named groups), run once per session."""
    return run_recipe("beyond", tmp_path_factory)


@pytest.fixture(scope="session")
def paragraphs_run(tmp_path_factory):
    """recipes/paragraphs.yaml (two-sentence paragraphs), run once per session."""
    return run_recipe("paragraphs", tmp_path_factory)
