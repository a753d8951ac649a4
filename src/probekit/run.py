"""``python -m probekit.run RECIPE [--out DIR] [--stage extract|analyze|report|all] [--dry-run]
[--checkpoint PATH|HUB_ID] [--quiet] [key=value ...]``: run a recipe from data to figures,
resuming where it stopped.

Output folder: ``store/`` (activations), ``results/*.csv`` (tidy tables), ``figures/`` (PNG and
PDF), ``recipe.yaml`` (the resolved recipe and its hash) and ``run.log``. Extraction resumes from
the store's manifest; analysis is redone only when the analysis section or the store changed.
The stages are in :mod:`probekit.pipeline`.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .distributed import Group, ranks_from_env
from .errors import ProbekitError, write_failure
from .helptext import plain
from .pipeline.output import log_failure
from .recipe import load_recipe

log = logging.getLogger("probekit")


@contextmanager
def stage_time(stage: str) -> Iterator[None]:
    """Log how long ``stage`` took once it is done (run.log keeps the stages' times)."""
    t0 = time.time()
    yield
    log.info("time: %s took %.0f s", stage, time.time() - t0)


def stores_progress(run: Any) -> str:
    """Which processes have stored their share (of the run's store and its control's)."""
    from .store.manifest import ranks_progress

    runs = [run] + ([run.control] if run.control is not None else [])
    return "; ".join(f"{r.store.parent.name if r is not run else 'store'}: "
                     f"{ranks_progress(r.store, r.ranks.world)}" for r in runs)


def main(argv: list[str] | None = None, prog: str = "python -m probekit.run") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=plain(__doc__),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("overrides", nargs="*", help="dotted overrides, e.g. record.batch_size=8")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default runs/NAME)")
    ap.add_argument("--stage", choices=["extract", "analyze", "report", "all"], default="all")
    ap.add_argument("--dry-run", action="store_true",
                    help="validate, list what is missing, estimate the time")
    ap.add_argument("--no-probe", action="store_true",
                    help="dry run: do not load the weights to time a probe batch")
    ap.add_argument("--overwrite", action="store_true",
                    help="delete this folder's stores and results and start afresh")
    ap.add_argument("--retry-skipped", action="store_true",
                    help="try the examples the store skipped again (those whose data changed "
                         "are always tried again)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--checkpoint", default=None,
                    help="your own checkpoint in place of the spec's (a hub id or a local "
                         "folder): the same as model.checkpoint=...")
    ap.add_argument("--allow-code", action="store_true",
                    help="import a wrapper class that a spec names by path (module:Class): "
                         "its module's code runs; only for specs you trust")
    args = ap.parse_intermixed_args(argv)
    if args.allow_code:
        from .wrappers.registry import allow_code
        allow_code()
    if args.checkpoint:
        args.overrides.append(f"model.checkpoint={args.checkpoint}")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from .allocator import keep_freed_memory
    keep_freed_memory()  # this command owns its process (the library never sets it)
    group = runlog = None
    try:
        ranks = ranks_from_env()
        recipe = load_recipe(args.recipe, args.overrides)
        from .pipeline import resolve_run
        if args.dry_run:
            if ranks.main:
                from .pipeline.dry_run import dry_run
                dry_run(resolve_run(recipe, args.out), probe=not args.no_probe)
            return 0
        group = Group(ranks)
        run = resolve_run(recipe, args.out, group)
        group.agree({"output folder": str(run.out.resolve()), "recipe": run.store_hash})
        out = run.out
        from .pipeline.output import open_run_log, prepare_output
        if ranks.main:  # the others wait for these checks at the first barrier
            prepare_output(run, args.overwrite and args.stage in ("extract", "all"),
                           check=args.stage in ("extract", "all"))
        group.barrier()
        runlog = open_run_log(run, " ".join(
            [prog, *(shlex.quote(str(a)) for a in (argv if argv is not None else sys.argv[1:]))]))
        t0 = time.time()
        if args.stage in ("extract", "all"):
            from .pipeline.extract import extract
            from .pipeline.preflight import preflight
            preflight(run, analysis_follows=args.stage == "all")
            with stage_time(f"{ranks.tag}extract"):
                extract(run, args.quiet, args.overwrite, args.retry_skipped)
            if run.control is not None:
                log.info("%sextract: the %s control (the same recipe on random weights) into %s",
                         ranks.tag, recipe.analysis.control, run.control.store)
                with stage_time(f"{ranks.tag}extract (control)"):
                    extract(run.control, args.quiet, args.overwrite, args.retry_skipped)
            # every process's share is stored (torchrun stops them all if one fails; the same
            # command resumes)
            group.barrier(lambda: stores_progress(run))
        if ranks.world > 1 and args.stage in ("analyze", "all"):
            from .pipeline.analyze import analyze_share
            with stage_time(f"{ranks.tag}analyze (this process's share)"):
                analyze_share(run, ranks.rank, ranks.world, args.quiet or not ranks.main)
            group.barrier()  # every process's share of the rows is computed
        if not ranks.main:
            log.info("%sdone: this process's share is stored and compared; rank 0 makes the "
                     "tables and figures", ranks.tag)
            return 0
        from .pipeline.analyze import analyze
        from .pipeline.figures import summary, write_figures
        if args.stage in ("analyze", "all"):
            with stage_time("analyze"):
                analyze(run, args.quiet, verify=args.stage == "analyze")
        if args.stage in ("report", "all"):
            if recipe.report.figures:
                with stage_time("report"):
                    write_figures(run, args.quiet)
            else:
                log.info("report: no figures (report.figures is false)")
        print(summary(out))
        print(f"done in {time.time() - t0:.0f} s: store {out / 'store'}, tables "
              f"{out / 'results'}, figures {out / 'figures'}, log {out / 'run.log'}")
        return 0
    except ProbekitError as e:
        print(f"error: {e}", file=sys.stderr)
        log_failure(runlog, f"error: {e}")
        return 2
    except OSError as e:  # a full disk, a lost mount: the committed work is kept
        where = f"cannot write {e.filename}: " if e.filename else ""
        return _fail(runlog, f"error: {where}{write_failure(e)}. What was committed is kept; fix "
                     "this and run the same command again to resume", 2)
    except MemoryError:
        return _fail(runlog, "error: out of memory. What was committed is kept; lower "
                     "record.batch_size (or use a machine with more memory) and run the same "
                     "command again to resume", 2)
    except KeyboardInterrupt:
        return _fail(runlog, "interrupted: run the same command again to resume", 130)
    finally:
        if group is not None:
            group.close()


def _fail(runlog: Any, message: str, status: int) -> int:
    """``message`` on stderr and in run.log (when open); the exit status."""
    print(message, file=sys.stderr)
    log_failure(runlog, message)
    return status


if __name__ == "__main__":
    sys.exit(main())
