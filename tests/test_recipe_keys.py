"""Recipe keys are documented once, in their fields: ``probekit options recipe`` lists them, and
recipes/README.md and the docs site's docs/recipe-keys.md hold its generated table.
``python tests/test_recipe_keys.py`` rewrites both tables after a field changes."""

import contextlib
import dataclasses
import io
import re
import sys
from pathlib import Path

from probekit.cli import main
from probekit.recipe import ALLOWED, CHOICES, INTERVAL_ANALYSES, KEYS, Recipe

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "recipes" / "README.md", ROOT / "docs" / "recipe-keys.md")
START, END = "<!-- recipe-keys:start -->\n", "<!-- recipe-keys:end -->"
SECTIONS = re.compile(re.escape(START) + r"(.*?)" + re.escape(END), flags=re.S)


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_options_recipe_lists_every_section_key_default_choices_and_doc():
    code, out = cli("options", "recipe")
    assert code == 0
    lines = out.splitlines()
    for section in ("data:", "data.code_switch:", "model:", "record:", "analysis:",
                    "analysis.length_bins:", "report:"):
        assert section in lines
    assert ("  pool (str, default mean; one of mean, first, last, none): One vector per example "
            "(the mean, first or last valid position), or none: every token.") in lines
    assert any(line.startswith("  quantize (str | None, default null; one of null, 8bit, 4bit)")
               for line in lines)
    assert any(line.startswith("  intervals (list[str], default [cross_modal]; each one of "
                               "cross_modal, cross_lingual)") for line in lines)
    assert any(line.startswith("name (str, default run): ") for line in lines)
    assert not any(line.startswith(("path ", "  path (str | None, default null): The recipe"))
                   for line in lines)  # Recipe.path is set on load, not a key
    assert len([line for line in lines if not line.endswith(":")]) == len(KEYS)
    assert cli("options", "recipe", "--html")[0] == 2


def test_every_recipe_key_has_a_doc_and_every_choice_list_is_in_the_fields():
    undocumented = [name for name, key in KEYS.items() if not key.doc]
    assert undocumented in ([], ["analysis.measures"]), undocumented  # measures: being reworked
    assert CHOICES["record.pool"] == ("mean", "first", "last", "none")
    assert CHOICES["model.variant"] == (None, "tiny", "random")
    assert "analysis.intervals" not in CHOICES and INTERVAL_ANALYSES == ALLOWED[
        "analysis.intervals"] == ("cross_modal", "cross_lingual")
    assert ALLOWED["data.code_switch.boundary"] == ("word", "clause")
    assert set(CHOICES) | {"data.modalities", "analysis.intervals", "analysis.resource",
                           "data.code_switch.boundary", "analysis.length_bins.by",
                           "analysis.claims.score"} == set(ALLOWED)
    # the metadata adds nothing to the hashed content
    assert dataclasses.asdict(Recipe())["record"]["pool"] == "mean"


def test_recipes_readme_and_the_docs_hold_the_generated_keys_table():
    code, table = cli("options", "recipe", "--markdown")
    assert code == 0 and table.startswith("| key | type | default | allowed | meaning |\n")
    for path in DOCS:
        found = SECTIONS.findall(path.read_text(encoding="utf-8"))
        assert len(found) == 1, f"{path}: one {START.strip()} ... {END} section expected"
        assert found[0] == table, (
            f"{path}'s recipe keys table differs from the recipe's fields; regenerate it with "
            "`python tests/test_recipe_keys.py` (writes `python -m probekit.cli options recipe "
            "--markdown` between the markers)")
        for key in ("`data.code_switch.boundary`", "`record.max_batch_seconds`",
                    "`report.figures`"):
            assert key in found[0]


if __name__ == "__main__":
    code, table = cli("options", "recipe", "--markdown")
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        new, count = SECTIONS.subn(lambda _: START + table + END, text)
        if code or count != 1:
            sys.exit(f"{path}: expected one {START.strip()} ... {END} section")
        path.write_text(new, encoding="utf-8")
        print(f"{path}: {len(table.splitlines()) - 2} recipe keys written")


def test_an_error_from_an_override_names_the_override_not_the_recipe_file(tmp_path):
    """A mistake in a command-line override is blamed on it (the recipe file, perhaps deep in
    site-packages, never had that key); a mistake in the file still names the file; a long
    value is cut in the message."""
    import pytest

    from probekit.errors import RecipeError
    from probekit.recipe import load_recipe

    for override, says in [("record.pol=mean", "record.pol: unknown key"),
                           ("analysis.k=abc", "analysis.k: expected int"),
                           ("data.languages=[eng,xx]", "unknown language code 'xx'")]:
        with pytest.raises(RecipeError) as e:
            load_recipe("demo", ["analysis.k=40", override])
        assert str(e.value).startswith(f"from override {override} (on recipe "), e
        assert "demo.yaml): " in str(e.value) and says in str(e.value), e
    with pytest.raises(RecipeError) as e:
        load_recipe("demo", ["analysis.k=" + "x" * 500])
    assert len(str(e.value)) < 400 and str(e.value).startswith("from override analysis.k=xxx")
    bad = tmp_path / "bad.yaml"
    bad.write_text("record:\n  pol: mean\n")
    with pytest.raises(RecipeError) as e:
        load_recipe(bad, ["analysis.k=40"])
    assert str(e.value).startswith(f"{bad}: "), e
