"""Every Python block of the README and of the docs site runs: the README's quick start, then
each page in the site's navigation order (mkdocs.yml), in one namespace (a page may use what an
earlier page made), from a folder where the demo has run (``runs/demo``, as after ``make
demo``) beside the checkout's ``data/``. Every page is in the navigation."""

import re
from pathlib import Path

import yaml

from probekit.analysis import MEASURES
from probekit.pipeline.analyses import ANALYSES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def pages() -> list[Path]:
    """The README, then the docs pages in the order of mkdocs.yml's nav."""
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    return [README, *(DOCS / next(iter(entry.values())) for entry in nav)]


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(first line in the file, code) of each ```python block."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M)]


def test_every_docs_page_is_in_the_navigation():
    listed = set(pages()[1:])
    assert listed == set(DOCS.glob("*.md")), set(DOCS.glob("*.md")) ^ listed


def test_every_python_block_of_the_readme_and_the_docs_runs_on_the_demo(demo_run, tmp_path,
                                                                         monkeypatch):
    out, _ = demo_run
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "demo").symlink_to(out)
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    ran = 0
    # the extending page registers a measure and an analysis: the registries are left as found
    registries = [(MEASURES, dict(MEASURES)), (ANALYSES, dict(ANALYSES))]
    try:
        for path in pages():
            for line, code in python_blocks(path):  # a failure's traceback names file and line
                exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)
                ran += 1
    finally:
        for registry, before in registries:
            registry.clear()
            registry.update(before)
    assert ran >= 9
    assert 0 < namespace["analysis"].svcca(namespace["fra"], namespace["eng"], k=10).score <= 1
    assert len(namespace["inputs"].lengths["speech_encoder"]) == 4  # the 4 clips of models.md
    assert namespace["tokens"].tokens("text_encoder.layers.0", "fra/text/12").ndim == 2
    assert namespace["x"].shape[0] == 100 and len(namespace["keys"]) == 100
