"""Every Python block of the README runs: in order, in one namespace, from a folder where the
demo has run (``runs/demo``, as after ``make demo``) beside the checkout's ``data/``."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def python_blocks() -> list[tuple[int, str]]:
    """(first line in the README, code) of each ```python block."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M)]


def test_every_readme_python_block_runs_on_the_demo(demo_run, tmp_path, monkeypatch):
    out, _ = demo_run
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "demo").symlink_to(out)
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks()
    assert len(blocks) >= 6
    namespace: dict = {}
    for line, code in blocks:  # a failure's traceback names README.md and the line
        exec(compile("\n" * (line - 1) + code, str(README), "exec"), namespace)
    assert len(namespace["inputs"].lengths["speech_encoder"]) == 4  # the 4 clips of block 2
    assert namespace["tokens"].tokens("text_encoder.layers.0", "fra/text/12").ndim == 2
    assert namespace["x"].shape[0] == 100 and len(namespace["keys"]) == 100
