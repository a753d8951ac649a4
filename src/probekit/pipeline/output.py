"""The output folder: checked before anything is written (the user's files there are never
touched, stores of another recipe are refused), the resolved ``recipe.yaml``, and ``run.log``."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

import yaml

from ..errors import ProbekitError, RecipeMismatchError
from .context import Run

OWN = ("store", "control", "results", "figures", "recipe.yaml", "run.log",  # all a run writes
       "analysis.partial.jsonl")  # rows of an analysis in progress (deleted when it is published)
STAGED = re.compile(r"\.(results|figures)\.(new|old)-\d+"  # a set being published (.publish)
                    r"|analysis\.partial-w\d+\.jsonl")  # an analysis worker's rows so far


def check_output_folder(out: Path) -> None:
    """Refuse, writing nothing, an output folder that cannot be written or that holds anything
    a run does not make (:data:`OWN`)."""
    if out.exists() and not out.is_dir():
        raise ProbekitError(f"--out {out} is a file, not a folder; give a new or empty folder")
    if out.is_dir():
        try:
            foreign = sorted(p.name for p in out.iterdir() if p.name not in OWN
                             and not STAGED.fullmatch(p.name))
        except OSError as e:
            raise ProbekitError(f"cannot read the output folder {out}: {e.strerror or e}") from None
        if foreign:
            raise ProbekitError(
                f"output folder {out} holds {len(foreign)} item(s) a probekit run does not make "
                f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); a run writes "
                f"only {', '.join(OWN)} there and touches nothing else. Give a new or empty "
                "folder with --out")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ProbekitError(f"cannot write the output folder {out}: {existing} is not a writable "
                            "folder; choose a writable folder with --out")


def check_stores(run: Run) -> None:
    """Refuse, writing nothing, stores in the output folder made by another recipe
    (--overwrite replaces them)."""
    from ..store import layout

    for r in [run] + ([run.control] if run.control is not None else []):
        meta_path = layout.store_json(r.store)
        if meta_path.exists():
            made_by = layout.read_json(meta_path).get("recipe_hash")
            if made_by != r.store_hash:
                raise RecipeMismatchError(
                    f"store {r.store} was made by recipe {made_by}, and this recipe's data, "
                    f"model or record section differs ({r.store_hash}). Write to a new folder "
                    "(--out), or pass --overwrite to delete the old store; nothing was written")


def prepare_output(run: Run, overwrite: bool, check: bool) -> None:
    """Check the output folder (and its stores, for an extraction), create it and write the
    resolved recipe."""
    out, recipe = run.out, run.recipe
    check_output_folder(out)
    if check and not overwrite:
        check_stores(run)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ProbekitError(f"cannot create the output folder {out}: {e.strerror or e}; "
                            "choose a writable folder with --out") from None
    if overwrite:
        (out / "results" / "analysis.hash").unlink(missing_ok=True)
    (out / "recipe.yaml").write_text(yaml.safe_dump(
        {**recipe.to_dict(), "hash": recipe.section_hash("data", "model", "record",
                                                        "analysis")}, sort_keys=False))


class RunLog(logging.FileHandler):
    """``run.log``; a write that fails (a full disk) warns once instead of a traceback a line."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            print(f"warning: cannot write {self.baseFilename} ({sys.exc_info()[1]}); the log "
                  "goes on on the screen only", file=sys.stderr)


def open_run_log(run: Run, command: str = "") -> RunLog:
    """``run.log`` added to the logging, each line tagged with the process: probekit's own
    lines (other libraries' log lines stay out), opened by a line with the versions, the
    ``command`` and the recipe's hash."""
    handler = RunLog(run.out / "run.log")
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {run.ranks.tag}"
                                           "%(message)s"))
    handler.addFilter(lambda record: record.name.partition(".")[0] == "probekit")
    logging.getLogger().addHandler(handler)
    handler.handle(logging.makeLogRecord({
        "msg": f"start: {command or 'probekit'} | {versions()} | recipe {run.recipe.path} hash "
               f"{run.recipe.section_hash('data', 'model', 'record', 'analysis')}",
        "levelname": "INFO", "levelno": logging.INFO, "name": "probekit"}))
    return handler


def versions() -> str:
    """probekit's version and those of Python and the packages that decide the numbers."""
    import contextlib
    import platform
    from importlib import metadata

    from .. import __version__

    found = [f"probekit {__version__}", f"python {platform.python_version()}"]
    for name in ("torch", "transformers", "numpy", "h5py", "fairseq2"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    return ", ".join(found)


def log_failure(handler: logging.Handler | None, message: str) -> None:
    """A fatal error, shown on stderr by the caller, written to ``run.log`` too (when open)."""
    if handler is not None:
        handler.handle(logging.makeLogRecord({"msg": message, "levelname": "ERROR",
                                              "levelno": logging.ERROR, "name": "probekit"}))
