"""Training on several processes with torch.distributed: `torchrun --nproc_per_node N -m netspec train SPEC`.

torchrun starts N copies of `netspec train` and gives each its place in the environment (`RANK`,
`WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`). `World.from_env()` reads them; a run without
them, or with `WORLD_SIZE=1`, gets the one-process `World()`, whose every method leaves things as they are,
so a single process trains exactly as it did before this module existed.

With several processes (docs/distributed.md):

- each process holds a full copy of the network, wrapped in DistributedDataParallel, which averages the
  gradients of the processes in the backward pass (gloo on the CPU, NCCL on CUDA, one GPU per process:
  `cuda:LOCAL_RANK`);
- `train.batch_size` is per process; one optimizer step reads `batch_size × WORLD_SIZE` samples;
- `shard` splits each epoch's order as torch's DistributedSampler does (the epoch's permutation padded to a
  multiple of the processes, process r taking every r-th sample), and the permutation is the one-process
  run's, so one step of N processes at batch b sees exactly the samples of one step of one process at
  batch N·b; padded samples train with weight 0 and count in no metric;
- the metrics of each process are sums and counts, gathered and added, so the means are those of the whole
  split; rank 0's early-stopping decision is broadcast, and a non-finite loss on any process stops all;
- rank 0 alone writes the run folder (logs, checkpoints, plots); every process reads `last.pt` to resume;
- random generators are reseeded at every epoch from (seed, rank, worker, epoch), so dropout and
  augmentation differ between processes and a resumed epoch repeats the uninterrupted one.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from .run import RunDir, RunFolderError

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")  # what torchrun sets for each process
WORKER = 0  # the batches are made in the training process itself, without DataLoader workers


@dataclass
class World:
    """This process's place among the training processes: rank, count, and rank on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # netspec started the process group, so it ends it

    @classmethod
    def from_env(cls) -> World:
        """The world torchrun describes in the environment; one process when it describes none (or one)."""
        if not all(os.environ.get(k) for k in ENV) or int(os.environ["WORLD_SIZE"]) == 1:
            return cls()
        return cls(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))

    @property
    def leader(self) -> bool:
        """Whether this process writes the run folder (rank 0)."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The device this process trains on: `cuda:LOCAL_RANK` when training on CUDA with several processes."""
        if self.size == 1 or device.type != "cuda":
            return device
        device = torch.device("cuda", self.local_rank)
        torch.cuda.set_device(device)
        return device

    def start(self, device: torch.device) -> None:
        """Join the process group (NCCL on CUDA, gloo otherwise), unless the caller has already started one."""
        if self.size == 1 or dist.is_initialized():
            return
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        self.owns_group = True

    def close(self) -> None:
        """Leave the process group netspec started, once every process got here (rank 0 writes the summary and
        plots meanwhile): a process that tears the group down while another still talks to it can be aborted by
        gloo. Call it where all processes arrive together: at the end, or after a loss that was not finite."""
        if self.owns_group and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
            self.owns_group = False

    @property
    def backend(self) -> str | None:
        return dist.get_backend() if self.size > 1 else None

    # --- the module ------------------------------------------------------------------------------------------
    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """`model` in DistributedDataParallel, which broadcasts rank 0's weights and buffers now and averages
        the gradients of the parameters that train now (so wrap again when `unfreeze` thaws some)."""
        if self.size == 1:
            return model
        device = next(model.parameters()).device
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                         else None)

    @staticmethod
    def syncing(net: torch.nn.Module, sync: bool):
        """The context of one micro-batch's forward and backward pass: without `sync`, DDP keeps the gradients
        local (`no_sync`) and averages them with the step's last micro-batch."""
        if sync or not isinstance(net, torch.nn.parallel.DistributedDataParallel):
            return contextlib.nullcontext()
        return net.no_sync()

    # --- data ------------------------------------------------------------------------------------------------
    def shard(self, order: torch.Tensor, batch_size: int) -> list[tuple[torch.Tensor, int, int]]:
        """This process's part of an epoch visiting the samples in `order`: per batch, (the sample indices,
        how many of them count, the samples of the step across all processes).

        As torch's DistributedSampler: `order` padded to a multiple of the processes by repeating its start,
        process r taking the samples at positions r, r + size, … — so the processes' b-sample batches together
        hold the `size·b` consecutive samples of `order` that one process at batch `size·b` would read. Every
        process gets the same number of batches; a process left without a sample in the last one gets a padded
        sample (the epoch's first) that counts 0 (`n = 0`), so that it still takes part in the step."""
        step = batch_size * self.size
        out = []
        for start in range(0, len(order), step):
            at = order[start:start + step][self.rank::self.size]
            n = len(at)
            out.append((at if n else order[:1], n, min(step, len(order) - start)))
        return out

    def part(self, split: dict) -> dict:
        """This process's share of an evaluated split, samples r, r + size, … (no padding: evaluation has no
        collective step, so the processes may hold different numbers of batches)."""
        return split if self.size == 1 else {k: v[self.rank::self.size] for k, v in split.items()}

    def seed_epoch(self, seed: int, epoch: int) -> None:
        """With several processes, reseed Python's, NumPy's and torch's generators from (seed, rank, worker,
        epoch) (numpy.random.SeedSequence), so each process draws its own dropout masks and augmentations,
        and an epoch draws the same ones whether or not the run was resumed before it."""
        if self.size == 1:
            return
        import numpy as np

        words = np.random.SeedSequence([seed, self.rank, WORKER, epoch]).generate_state(2)
        value = int(words[0]) << 32 | int(words[1])
        random.seed(value)
        np.random.seed(words[0])
        torch.manual_seed(value)

    # --- agreement -------------------------------------------------------------------------------------------
    def mean(self, value: float) -> float:
        """The mean of `value` over the processes (all-reduced: every process gets it, and a NaN anywhere is a
        NaN everywhere)."""
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return float(t) / self.size

    def gather(self, obj) -> list:
        """Every process's `obj`, in rank order."""
        if self.size == 1:
            return [obj]
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def agree(self, flag: bool) -> bool:
        """Rank 0's `flag`, on every process (to stop early together)."""
        return bool(self.broadcast(flag))

    def broadcast(self, obj):
        """Rank 0's `obj` (picklable), on every process."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def _comm_device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else torch.device("cpu")

    # --- the run folder --------------------------------------------------------------------------------------
    def open_run(self, open_folder) -> RunDir:
        """Rank 0 opens the run folder (`open_folder()`) and tells the others its path, or its RunFolderError;
        they get a `Follower` of the same path."""
        if self.size == 1:
            return open_folder()
        if self.leader:
            try:
                run = open_folder()
            except RunFolderError as exc:
                self.broadcast((None, str(exc)))
                raise
            self.broadcast((str(run.path), None))
            return run
        path, problem = self.broadcast(None)
        if problem is not None:
            raise RunFolderError(problem)
        return Follower(Path(path), progress=False)


class Follower(RunDir):
    """The run folder as a process other than rank 0 holds it: its path and the rows the loop reads, kept in
    memory; nothing printed or written."""

    def note(self, text: str) -> None:
        pass

    def _write_steps(self) -> None:
        pass

    def log_epoch(self, row: dict) -> None:
        self.epochs.append(row)

    def finish(self, summary: dict, setup) -> None:
        pass
