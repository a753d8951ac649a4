"""Build step: wheels carry the model specs, recipes and demo data as package data.

The top-level ``models/``, ``recipes/`` and ``data/demo/`` (in a checkout, or in the sdist via
MANIFEST.in) are copied into the build's ``probekit/_resources/``, where ``probekit.resources``
finds them in an installed wheel. ``recipes/`` and ``data/`` stay siblings there, so a recipe's
data path relative to its file (``../data/demo/manifest.tsv``) still resolves. Editable installs
copy nothing: ``probekit.resources`` reads the checkout itself. Everything else is in
pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
RESOURCES = ("models", "recipes", "data/demo")  # only the demo data set from data/


class build_py_with_resources(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "probekit" / "_resources"
        shutil.rmtree(target, ignore_errors=True)  # nothing stale from an earlier build
        for folder in RESOURCES:
            shutil.copytree(ROOT / folder, target / folder,
                            ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]"))


setup(cmdclass={"build_py": build_py_with_resources})
