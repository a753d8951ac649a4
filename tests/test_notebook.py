"""The example notebook runs top to bottom in a Jupyter kernel (nbclient) on the demo's store."""

from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "demo_store.ipynb"


def test_the_demo_notebook_runs_top_to_bottom(demo_run, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    out, _ = demo_run
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored clean
    monkeypatch.setenv("PROBEKIT_DEMO_STORE", str(out / "store"))
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the figure was drawn
    text = "".join(o.get("text", "") for o in outputs)
    assert "notebook    recipe" in text  # the last cell compared its numbers with the run's
