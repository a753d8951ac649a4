"""The example notebook runs top to bottom on the demo's store, as the docs say to run it:
``jupyter nbconvert --to notebook --execute`` with what the ``[notebook]`` extra installs."""

import subprocess
import sys
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "demo_store.ipynb"


def test_the_demo_notebook_runs_top_to_bottom(demo_run, tmp_path, monkeypatch):
    import nbformat

    out, _ = demo_run
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored clean
    monkeypatch.setenv("PROBEKIT_DEMO_STORE", str(out / "store"))
    jupyter = Path(sys.executable).parent / "jupyter"  # this environment's, as after the extra
    done = subprocess.run([str(jupyter), "nbconvert", "--to", "notebook", "--execute",
                           "--ExecutePreprocessor.timeout=300", str(NOTEBOOK),
                           "--output-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=NOTEBOOK.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    nb = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the figure was drawn
    text = "".join(o.get("text", "") for o in outputs)
    assert "notebook    recipe" in text  # the last cell compared its numbers with the run's
