"""Data-parallel extraction under ``torchrun``: which process this is, a barrier, and the split
of a run's batches across processes.

``torchrun --nproc-per-node N -m probekit.run RECIPE`` starts N copies of the run. Each reads
its rank from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), records
the batches :func:`assign` gives it into the one store as its own writer rank, and waits at a
barrier; rank 0 then analyses and reports. The batches are planned from every example before
they are split, so each example is computed in the same batch whatever the number of processes:
the store equals a single-process run's, value for value. The barrier uses the gloo backend
(CPU), which needs no GPU communication library and works across nodes.
"""

from __future__ import annotations

import datetime
import heapq
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("probekit")

# A process that finishes its share early waits at the barrier for the slowest one; past this
# many hours it stops, saying that another process froze or died (PROBEKIT_BARRIER_HOURS).
BARRIER_HOURS = float(os.environ.get("PROBEKIT_BARRIER_HOURS", "4"))
# While rank 0 waits, a line every this many seconds says which processes are done.
PROGRESS_SECONDS = float(os.environ.get("PROBEKIT_PROGRESS_SECONDS", "60"))


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def tag(self) -> str:
        """A log prefix: empty in a single process."""
        return f"[rank {self.rank}/{self.world}] " if self.world > 1 else ""


def ranks_from_env() -> Ranks:
    """This process's place, from the variables torchrun (or SLURM through torchrun) sets."""
    from .errors import ProbekitError

    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as e:
        raise ProbekitError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers ({e}); start "
                            "data-parallel runs with torchrun") from None
    if not 0 <= rank < world:
        raise ProbekitError(f"RANK={rank} is not below WORLD_SIZE={world}; start data-parallel "
                            "runs with torchrun")
    return Ranks(rank, world, local)


class Group:
    """The process group of a data-parallel run (nothing in a single process)."""

    def __init__(self, ranks: Ranks):
        self.ranks = ranks
        self.started = False
        if ranks.world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                try:
                    dist.init_process_group("gloo", rank=ranks.rank, world_size=ranks.world,
                                            timeout=datetime.timedelta(hours=BARRIER_HOURS))
                except (ValueError, RuntimeError) as e:
                    from .errors import ProbekitError

                    raise ProbekitError(
                        f"cannot join the {ranks.world} processes of this run as rank "
                        f"{ranks.rank}: {str(e).splitlines()[0]}. Start data-parallel runs with "
                        "torchrun (it sets MASTER_ADDR and MASTER_PORT), or unset WORLD_SIZE "
                        "and RANK for a single process") from None
                self.started = True

    def barrier(self, progress: Callable[[], str] | None = None) -> None:
        """Wait for every process. With ``progress``, rank 0 logs what it returns (which
        processes are done) every :data:`PROGRESS_SECONDS` while it waits. Past
        :data:`BARRIER_HOURS` it stops with one line: another process froze or died."""
        if self.ranks.world <= 1:
            return
        import torch.distributed as dist

        try:
            work = dist.barrier(async_op=True)
            start = last = time.monotonic()
            while not work.is_completed():
                time.sleep(0.2)
                now = time.monotonic()
                if now - start > BARRIER_HOURS * 3600:
                    raise RuntimeError(f"no answer in {BARRIER_HOURS:g} h")
                if progress is not None and self.ranks.main and now - last >= PROGRESS_SECONDS:
                    log.info("%swaiting for the other processes: %s", self.ranks.tag, progress())
                    last = now
            work.wait()
        except RuntimeError as e:  # gloo's timeout, or a process that died
            from .errors import ProbekitError

            raise ProbekitError(
                f"{self.ranks.tag}waited for the other processes of this run and gave up "
                f"({str(e).splitlines()[0][:160]}): one of them froze or died. What every "
                "process committed is kept; the same command resumes. The wait is at most "
                f"{BARRIER_HOURS:g} h (PROBEKIT_BARRIER_HOURS)") from None

    def agree(self, values: dict[str, str]) -> None:
        """Refuse, on every process and before anything is written, a run whose processes
        were started with different ``values`` (output folder, recipe): they would write
        stores that each look complete with a part of the examples."""
        if self.ranks.world <= 1:
            return
        import torch.distributed as dist

        from .errors import ProbekitError

        every: list[dict[str, str] | None] = [None] * self.ranks.world
        dist.all_gather_object(every, values)
        first = every[0] or {}
        for rank, theirs in enumerate(every):
            differ = [k for k in values if (theirs or {}).get(k) != first.get(k)]
            if differ:
                key = differ[0]
                raise ProbekitError(
                    f"the {self.ranks.world} processes of this run disagree: rank {rank} has "
                    f"{key} {str((theirs or {}).get(key))[:120]!r}, rank 0 "
                    f"{str(first.get(key))[:120]!r}. Start every process with the same "
                    "recipe, overrides and --out (torchrun does); nothing was written")

    def close(self) -> None:
        if self.started:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.started = False


def assign(costs: Sequence[float], world: int) -> list[int]:
    """The rank of each batch: the costliest batches first, each to the least-loaded rank
    (ties: the lower rank), so that every rank gets about the same padded length, not the same
    count. Deterministic: every rank computes the same answer."""
    owner = [0] * len(costs)
    loads = [(0.0, r) for r in range(world)]
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        load, r = heapq.heappop(loads)
        owner[i] = r
        heapq.heappush(loads, (load + float(costs[i]), r))
    return owner


def device_for(device: str, ranks: Ranks) -> str:
    """The device a rank runs on: its own GPU (``cuda:LOCAL_RANK``) when the model's device is
    a GPU (or ``auto`` with GPUs), else ``device`` unchanged."""
    if ranks.world == 1 or device not in ("auto", "cuda"):
        return device
    import torch

    if not torch.cuda.is_available():
        return "cpu" if device == "auto" else device
    index = ranks.local_rank % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return f"cuda:{index}"
