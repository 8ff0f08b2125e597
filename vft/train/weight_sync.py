"""Weight sync in TRL's server mode without NCCL: the trainer class for a plan.

TRL's `GRPOTrainer` pushes the trainer's weights to the vLLM server after each optimizer
step through an NCCL communicator, which cannot exist on a CPU. For a plan whose
`inference.weight_sync` is "files", `grpo_trainer_class` returns a subclass whose
generation object skips the communicator and pushes through `vft.train.weight_files`
(safetensors written with a marker last, the server reloads, every call bounded by the
plan's timeout, one-line errors on every rank).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vft.core.plan import Plan
from vft.train.weight_files import (
    DEFAULT_TIMEOUT_S,
    DIR_ENV,
    RUN_DIR_PLACEHOLDER,
    FileSync,
    SyncTiming,
    WeightSyncError,
    one_line,
    summary,
)

# -- the plan's side ----------------------------------------------------------------------


def sync_dir(
    plan: Plan, run_dir: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """Where the trainer writes: $VFT_WEIGHT_SYNC_DIR, else the plan's, in the run folder."""
    env = os.environ if environ is None else environ
    raw = env.get(DIR_ENV) or plan.inference.weight_sync_dir
    if not raw:
        raise WeightSyncError(
            f"weight sync: the plan has no weight_sync_dir and {DIR_ENV} is not set"
        )
    if RUN_DIR_PLACEHOLDER in raw:
        if run_dir is None:
            raise WeightSyncError(f"weight sync: {raw!r} needs the run folder, none was given")
        raw = raw.replace(RUN_DIR_PLACEHOLDER, str(run_dir))
    return Path(raw)


def uses_files(plan: Plan) -> bool:
    return plan.inference.weight_sync == "files"


def grpo_trainer_class(
    plan: Plan, run_dir: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> type[Any]:
    """TRL's GRPOTrainer, or for a files-synced plan a subclass that syncs through files.

    Construct the result exactly like GRPOTrainer (`vllm_mode="server"`); only the weight
    transport differs.
    """
    from trl import GRPOTrainer

    if not uses_files(plan):
        return GRPOTrainer
    timeout = plan.inference.weight_sync_timeout_s or DEFAULT_TIMEOUT_S
    return file_sync_trainer(sync_dir(plan, run_dir, environ), timeout)


_SWAP_LOCK = threading.RLock()  # re-entrant: a nested swap fails its check, not deadlocks


@contextmanager
def _swapped(module: Any, name: str, expected: Any, replacement: Any) -> Iterator[None]:
    """`module.name` is `replacement` inside the block (restored after, even on error)."""
    with _SWAP_LOCK:
        current = getattr(module, name, None)
        if current is not expected:
            raise RuntimeError(
                f"vft weight sync: {module.__name__}.{name} is {current!r}, not TRL's "
                f"{expected!r}; this TRL version is not supported by the files transport"
            )
        setattr(module, name, replacement)
        try:
            yield
        finally:
            setattr(module, name, current)


def file_sync_trainer(root: str | Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> type[Any]:
    """A GRPOTrainer subclass whose server-mode generation syncs weights through `root`."""
    import trl.trainer.grpo_trainer as grpo_module
    from trl import GRPOTrainer
    from trl.generation.vllm_generation import VLLMGeneration

    generation = file_sync_generation(root, timeout_s)

    class FileSyncGRPOTrainer(GRPOTrainer):
        """GRPOTrainer whose vLLM server receives weights through files, not NCCL."""

        weight_sync_root = Path(root)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # GRPOTrainer.__init__ builds its generation backend by the module-global name
            # VLLMGeneration and offers no hook; point that name at ours for the call only.
            with _swapped(grpo_module, "VLLMGeneration", VLLMGeneration, generation):
                super().__init__(*args, **kwargs)
            gen = getattr(self, "vllm_generation", None)
            if gen is not None and getattr(gen, "mode", None) == "server":
                if not isinstance(gen, generation):
                    raise RuntimeError(
                        "vft weight sync: GRPOTrainer did not build its vLLM backend through "
                        "trl.trainer.grpo_trainer.VLLMGeneration; this TRL version is not "
                        "supported by the files transport"
                    )
                gen.step_source = lambda: int(self.state.global_step)

        @property
        def weight_sync_timings(self) -> list[SyncTiming]:
            gen = getattr(self, "vllm_generation", None)
            return list(getattr(gen, "timings", []))

        def train(self, *args: Any, **kwargs: Any) -> Any:
            result = super().train(*args, **kwargs)
            timings = self.weight_sync_timings
            if timings and self.accelerator.is_main_process:
                print(f"vft.train: {summary(timings, root)}", flush=True)
            return result

    return FileSyncGRPOTrainer


def file_sync_generation(root: str | Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> type[Any]:
    """TRL's VLLMGeneration for server mode with no NCCL communicator; sync = FileSync."""
    from trl.generation.vllm_generation import VLLMGeneration

    class FileSyncVLLMGeneration(VLLMGeneration):
        sync_root = Path(root)
        sync_timeout_s = float(timeout_s)

        def _init_vllm(self) -> None:
            if self.mode != "server":
                super()._init_vllm()
                return
            from trl.generation.vllm_client import VLLMClient

            self.file_sync: FileSync | None = None
            self.step_source: Any = None
            self._syncs = 0
            if self.accelerator.is_main_process:
                base_url = self.server_base_url or f"http://{self.server_host}:{self.server_port}"
                # waits for /health up to server_timeout; no init_communicator: that is NCCL
                self.vllm_client = VLLMClient(
                    base_url=base_url,
                    group_port=self.group_port,
                    connection_timeout=self.server_timeout,
                )
                self.file_sync = FileSync(self.vllm_client.base_url, self.sync_root, timeout_s)
            self.accelerator.wait_for_everyone()

        @property
        def timings(self) -> list[SyncTiming]:
            sync = getattr(self, "file_sync", None)
            return list(sync.timings) if sync is not None else []

        def _sync_buffer(self, name: str, tensor: Any) -> Any:
            """`tensor` copied into this sync's CPU buffer for `name`: the same buffer every
            sync (memory already paged in; a new copy each time faults every page)."""
            import torch

            buffers: dict[str, Any] = self.__dict__.setdefault("_vft_sync_buffers", {})
            buf = buffers.get(name)
            if buf is None or buf.shape != tensor.shape or buf.dtype != tensor.dtype:
                buf = buffers[name] = torch.empty(tensor.shape, dtype=tensor.dtype)
            return buf.copy_(tensor)

        def sync_weights(self) -> None:
            if self.mode != "server":
                super().sync_weights()
                return
            accelerator = self.accelerator
            main = accelerator.is_main_process
            step = int(self.step_source()) if self.step_source is not None else self._syncs
            self._syncs += 1
            error: str | None = None
            failure: BaseException | None = None
            try:
                start = time.perf_counter()
                tensors: dict[str, Any] = {}
                # collective under ZeRO-3: every rank walks it; merges PEFT adapters; yields a
                # tied weight once (under the embedding's name, as vLLM expects)
                for name, param in self._iter_named_params():
                    if main:  # the gathered storage is freed on the next step: copy it
                        tensors[name] = self._sync_buffer(name, param.detach())
                gathered = time.perf_counter() - start
                if main and self.file_sync is not None:
                    self.file_sync.push(tensors, step, gather_s=gathered)
                del tensors
            except Exception as exc:  # reported on every rank below
                failure = exc
                error = one_line(exc)
            if accelerator.num_processes > 1:  # the main process's failure stops every rank
                from accelerate.utils import broadcast_object_list

                box = [error]
                broadcast_object_list(box, from_process=0)
                error = box[0] or error
            accelerator.wait_for_everyone()
            if error is not None:
                raise WeightSyncError(error) from failure

    return FileSyncVLLMGeneration
