"""Packaging: pyproject.toml's dependencies against src/probekit's imports and both lock files; a
built wheel's contents (specs, recipes, demo data, py.typed, the ``probekit`` command, LICENSE);
and, with PROBEKIT_WHEEL_TEST=1 (``make test-current``), that wheel installed into a fresh virtual
environment and run from outside the checkout."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import QUICK_START, SHIPPED, run_checked
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from test_docs import python_blocks

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "probekit"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT.get("optional-dependencies", {})

# Distribution -> top-level module, where they differ.
MODULE_OF = {"pyyaml": "yaml", "sonar-space": "sonar", "huggingface-hub": "huggingface_hub"}
# Required although src/probekit never imports it, each with its reason.
INDIRECT = {"sentencepiece": "transformers reads the sentencepiece tokenizers of the shipped "
                             "specs (SeamlessM4T, LLaMA/Vicuna) with it and does not require it"}
# Imported by src/probekit, declared nowhere, each with its reason.
UNDECLARED = {"pyarrow": "report.tables writes parquet besides CSV only when pyarrow imports"}
# Extras that are tools (the tests, the docs site), not features of probekit.
TOOLING = {"test", "docs"}


def requirements(extras: list[str] = ()) -> list[Requirement]:
    """pyproject's dependencies and those of ``extras`` whose markers hold here."""
    reqs = [(Requirement(r), None) for r in PROJECT["dependencies"]]
    reqs += [(Requirement(r), extra) for extra in extras for r in EXTRAS[extra]]
    return [r for r, extra in reqs
            if r.marker is None or r.marker.evaluate({"extra": extra or ""})]


def module_of(req: Requirement) -> str:
    name = canonicalize_name(req.name)
    return MODULE_OF.get(name, name.replace("-", "_"))


def imports(folder: Path) -> set[str]:
    """Top-level modules that the files under ``folder`` import (absolute imports, anywhere)."""
    found = set()
    for path in folder.rglob("*.py"):
        if "_resources" in path.relative_to(folder).parts:  # a build's copies, not probekit's
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def optional_modules() -> set[str]:
    """Modules of the feature extras that no required dependency provides."""
    required = {module_of(r) for r in requirements()}
    return {module_of(Requirement(r)) for extra, reqs in EXTRAS.items() if extra not in TOOLING
            for r in reqs} - required


def lock(path: Path) -> dict[str, Version]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = Version(version)
    return pins


def legs() -> dict[str, list[str]]:
    """Each lock file and the extras the Makefile installs with it."""
    makefile = (ROOT / "Makefile").read_text()  # extras are joined by $(COMMA), arguments by ,
    found = dict(re.findall(
        r"\$\(call venv,[^,]+,requirements/([\w.-]+\.lock),((?:\w|\$\(COMMA\))*)[,)]", makefile))
    assert set(found) == {"reference.lock", "current.lock"}, found
    return {name: [e for e in extras.split("$(COMMA)") if e] for name, extras in found.items()}


# (a) dependencies against imports


def test_every_required_dependency_is_imported():
    imported = imports(SRC)
    missing = {r.name for r in requirements() if module_of(r) not in imported} - set(INDIRECT)
    assert not missing, f"required in pyproject.toml but never imported by src/probekit: {missing}"
    for name in INDIRECT:
        assert name in {canonicalize_name(r.name) for r in requirements()}, \
            f"{name} is listed in INDIRECT but is no longer a required dependency"


def test_every_third_party_import_is_declared():
    declared = {module_of(r) for r in requirements(list(EXTRAS))}
    third_party = imports(SRC) - set(sys.stdlib_module_names) - {"probekit"}
    undeclared = third_party - declared - set(UNDECLARED)
    assert not undeclared, f"src/probekit imports {undeclared}, which pyproject.toml never names"


def test_probekit_imports_without_the_optional_packages():
    """Every module of probekit imports with the extras' packages unavailable: none of them is
    imported at module level."""
    blocked = sorted(optional_modules())
    assert "nnsight" in blocked and "torchaudio" in blocked
    code = ("import sys, pkgutil, importlib\n"
            f"for name in {blocked!r}:\n"
            "    sys.modules[name] = None\n"
            "import probekit\n"
            "for m in pkgutil.walk_packages(probekit.__path__, 'probekit.'):\n"
            "    if not m.name.endswith('__main__'):\n"
            "        importlib.import_module(m.name)\n"
            "import probekit.store.__main__, probekit.cli\n"
            "print('ok', probekit.__file__)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, f"blocked {blocked}:\n{out.stderr[-3000:]}"
    assert out.stdout.startswith("ok")


# (b) the lock files against pyproject.toml


@pytest.mark.parametrize("lock_name", ["reference.lock", "current.lock"])
def test_lock_satisfies_pyproject(lock_name):
    extras = legs()[lock_name]
    assert set(extras) <= set(EXTRAS), f"the Makefile installs extras {extras}; pyproject has " \
                                       f"{sorted(EXTRAS)}"
    pins = lock(ROOT / "requirements" / lock_name)
    build = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]  # --no-build-isolation
    problems = []
    for req in requirements(extras) + build:
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None:
            problems.append(f"{req} is not in the lock")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req} excludes the lock's {req.name}=={pinned}")
    assert not problems, f"{lock_name} (extras {','.join(extras)}): " + "; ".join(problems)


def test_legs_install_every_feature_extra():
    """The reference leg installs every extra; the current one all but those without a release
    for its torch (SONAR's fairseq2, torchaudio) and the docs site's (built once, in `make
    lint`)."""
    installed = legs()
    assert set(installed["reference.lock"]) == set(EXTRAS)
    assert set(EXTRAS) - set(installed["current.lock"]) == {"sonar", "audio", "docs"}


# (b2) what importing probekit does to the process

ALLOCATOR_SPY = """
import ctypes, sys
import numpy as np
from probekit.analysis import Comparer, basis
calls = []
real = ctypes.CDLL
class Spy:
    def __init__(self, name, *args, **kwargs):
        self._lib, self._name = real(name, *args, **kwargs), name
    def __getattr__(self, attr):
        if attr == "mallopt":
            calls.append(self._name)
        return getattr(self._lib, attr)
ctypes.CDLL = Spy
rng = np.random.default_rng(0)
views = {"a": rng.standard_normal((60, 80)), "b": rng.standard_normal((60, 80))}
Comparer(views.__getitem__, ["svcca", "linear_cka"], k=5, n_boot=4, n_perm=3).compare("a", "b")
basis.decompose(basis.as_matrix(views["a"].T))
print("library", len(calls))
from probekit.run import main
main(["no-such-recipe.yaml"])
print("command", len(calls))
"""


def test_the_library_leaves_the_allocator_alone_and_the_command_opts_in(tmp_path):
    """Importing and using the analysis changes no process-wide allocator setting (it set
    glibc's mallopt on the first decomposition); the probekit command sets it for itself."""
    out = subprocess.run([sys.executable, "-c", ALLOCATOR_SPY], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300,
                         env={**os.environ, "PROBEKIT_NO_MALLOPT": ""})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "library 0\n" in out.stdout, out.stdout
    assert "command 2\n" in out.stdout, out.stdout + out.stderr[-2000:]


@pytest.mark.parametrize("command", [["--help"], ["run", "--help"], ["layers", "--help"],
                                     ["store", "--help"]])
def test_python_m_probekit_prints_plain_help(command):
    """``python -m probekit`` is the command; its help is plain text, not reStructuredText."""
    out = subprocess.run([sys.executable, "-m", "probekit", *command], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "probekit" in out.stdout and len(out.stdout) > 200, out.stdout
    assert "``" not in out.stdout and not re.search(r":[a-z]+:`", out.stdout), out.stdout


# (b3) the name users install

def test_the_distribution_name_is_ours_and_every_install_line_uses_it():
    """``pip install probekit`` installs an unrelated PyPI project (a linear-probe package, seen
    2026-12-05): the distribution is named otherwise (the import package and the command stay
    ``probekit``), and every install line in the docs, recipes and messages names it."""
    from probekit.errors import DISTRIBUTION, install_hint

    name = PROJECT["name"]
    assert name != "probekit", "'probekit' on PyPI is another project; users would install it"
    assert name == DISTRIBUTION
    assert install_hint("sonar") == f"pip install '{name}[sonar]'"
    texts = {p: p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"),
                                        *(ROOT / "recipes").glob("*"),
                                        *(ROOT / "models").glob("*.yaml"), *SRC.rglob("*.py")]
             if p.is_file()}
    installs = [(p.relative_to(ROOT), m.group(0)) for p, text in texts.items()
                for m in re.finditer(r"pip install\s+['\"]?(?:-e\s+)?\.?([A-Za-z][\w.-]*)", text)
                if m.group(1).lower().startswith("probekit")]
    assert len({p for p, _ in installs} & {Path("README.md"), Path("docs/setup.md")}) == 2
    wrong = [(p, line) for p, line in installs
             if f"install {name}" not in line.replace("'", "").replace('"', "")]
    assert not wrong, f"install lines naming another distribution: {wrong}"
    extras = [(p.relative_to(ROOT), m.group(0)) for p, text in texts.items()
              for m in re.finditer(r"(?<![\w-])probekit\[\w+\]", text)]
    assert not extras, f"extras of the wrong distribution: {extras}"


# (c) the wheel


def test_wheel_carries_resources_entry_point_and_license(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        dist_info = f"{PROJECT['name'].replace('-', '_')}-{PROJECT['version']}.dist-info"
        entry_points = z.read(f"{dist_info}/entry_points.txt").decode()
    for name in ("probekit/_resources/models/seamless_m4t_v2.yaml",
                 "probekit/_resources/recipes/demo.yaml",
                 "probekit/_resources/data/demo/manifest.tsv",
                 "probekit/py.typed", "probekit/cli.py", "probekit/resources.py",
                 f"{dist_info}/licenses/LICENSE"):
        assert name in names, f"{name} is not in {wheel.name}"
    assert re.search(r"^\[console_scripts\]\s*\nprobekit = probekit\.cli:main$", entry_points,
                     re.M), entry_points
    # exactly the shipped folders' files (every demo clip the manifest names), nothing else
    expected = {f"probekit/_resources/{p.relative_to(ROOT).as_posix()}"
                for folder in SHIPPED for p in (ROOT / folder).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    carried = {n for n in names if n.startswith("probekit/_resources/")}
    assert carried == expected, (f"missing {sorted(expected - carried)[:5]}, "
                                 f"unexpected {sorted(carried - expected)[:5]}")
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


# (d) the wheel installed and run outside the checkout

@pytest.mark.slow
def test_installed_wheel_runs_outside_the_checkout(installed_wheel, demo_run):
    venv, work, env = installed_wheel
    python, probekit = venv / "bin" / "python", venv / "bin" / "probekit"
    out, _ = run_checked([str(python), "-c", "import probekit; print(probekit.__file__)"], work,
                         env)
    location = Path(out.stdout.strip()).resolve()
    assert location.is_relative_to(venv.resolve()), location
    assert not location.is_relative_to(ROOT), location

    out, took = run_checked([str(probekit), "--help"], work, env)
    assert "probekit run" in out.stdout
    print(f"probekit --help: {took:.2f} s")

    out, took = run_checked([str(probekit), "layers", "seamless_m4t_v2", "--variant", "tiny"],
                            work, env)
    assert "speech_encoder.encoder.layers.0" in out.stdout, out.stdout
    print(f"probekit layers seamless_m4t_v2 --variant tiny: {took:.2f} s")

    # the released architecture from its config alone (written here: no network), no weights
    run_checked([str(python), "-c", "import transformers; "
                 "transformers.SeamlessM4Tv2Config().save_pretrained('large-config')"], work, env)
    out, took = run_checked([str(probekit), "layers", "seamless_m4t_v2", "--checkpoint",
                             "large-config"], work, env)
    assert "75 hook points" in out.stdout and "no weights loaded" in out.stdout, out.stdout
    print(f"probekit layers seamless_m4t_v2 (config alone, meta device): {took:.2f} s")

    out, _ = run_checked([str(probekit), "specs"], work, env)
    assert "seamless_m4t_v2" in out.stdout and "demo" in out.stdout, out.stdout

    # the README's quick start, as written: its `probekit` commands (the first one ran the demo
    # that the other tests of this leg read: demo_run), then its Python, from a folder that is
    # not the checkout
    text = (ROOT / "README.md").read_text()
    start = text.index("## Quick start")
    commands = [line.split("#")[0].split() for line in text[start:].splitlines()
                if line.startswith("probekit ")]
    assert commands and commands[0] == QUICK_START, commands
    out_folder, first = demo_run
    assert out_folder == work / "runs" / "demo" and first.returncode == 0
    assert (out_folder / "results" / "similarities.csv").is_file()
    assert len(list((out_folder / "figures").glob("*.png"))) > 10
    for command in commands[1:]:
        _, took = run_checked([str(venv / "bin" / command[0]), *command[1:], "--quiet"], work,
                              env)
        print(f"{' '.join(command)}: {took:.1f} s")
    code = "\n".join(c for line, c in python_blocks(ROOT / "README.md")
                     if line > text.count("\n", 0, start))
    out, _ = run_checked([str(python), "-c",
                          code + "\nprint(repr(analysis.svcca(fra, eng, k=10)))"], work, env)
    assert out.stdout.startswith("Similarity(measure='svcca', score="), out.stdout
