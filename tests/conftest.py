import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
ROOT = Path(__file__).resolve().parent.parent


def run_recipe(name, tmp_path_factory):
    """A shipped recipe run once: (output folder, the finished process)."""
    out = tmp_path_factory.mktemp(name)
    done = subprocess.run([sys.executable, "-m", "probekit.run", str(ROOT / f"recipes/{name}.yaml"),
                           "--out", str(out), "--quiet"], capture_output=True, text=True,
                          timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return out, done


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The shipped demo recipe, run once per session."""
    return run_recipe("demo", tmp_path_factory)


@pytest.fixture(scope="session")
def beyond_run(tmp_path_factory):
    """recipes/beyond.yaml (code switching, length bins, named groups), run once per session."""
    return run_recipe("beyond", tmp_path_factory)


@pytest.fixture(scope="session")
def paragraphs_run(tmp_path_factory):
    """recipes/paragraphs.yaml (two-sentence paragraphs), run once per session."""
    return run_recipe("paragraphs", tmp_path_factory)
