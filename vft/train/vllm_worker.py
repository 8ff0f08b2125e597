"""vLLM worker extension for the files weight-sync transport.

`vllm serve ... --worker-extension-cls vft.train.vllm_worker.FileSyncWorkerExtension` mixes
this class into every vLLM worker; the trainer then calls, through the dev-mode route
``POST /collective_rpc {"method": "reload_weights_from_dir", "kwargs": {"weights_path": DIR}}``,
:meth:`FileSyncWorkerExtension.reload_weights_from_dir` on each of them.

Set ``VFT_WEIGHT_SYNC_PROFILE=DIR`` in the server's environment to write a cProfile of each
reload to ``DIR/reload-STEP.prof`` (read with ``python -m pstats``).

Importable without vLLM (vLLM and torch are imported inside the method). Attributes of a
worker extension must not clash with the worker's own, so the helpers are module functions.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vft.train.weight_files import WEIGHTS_FILE, read_marker

PROFILE_ENV = "VFT_WEIGHT_SYNC_PROFILE"


class FileSyncWorkerExtension:
    """Adds `reload_weights_from_dir` to a vLLM worker."""

    def reload_weights_from_dir(self, weights_path: str) -> dict[str, Any]:
        """Load the complete set in `weights_path` in place; refuse an incomplete one.

        On the CPU with an unquantized model, `vft.train.weight_reload` copies the set
        into the live tensors and repacks only the packed GEMMs; otherwise vLLM's generic
        reload runs, followed by a refresh of the LM heads' packed copies (a tied head is
        loaded through embed_tokens, never as lm_head.weight, so vLLM leaves it stale).
        """
        from vft.train.weight_reload import reload_in_place

        manifest = read_marker(weights_path)  # ValueError: the server answers 500 with it
        start = time.perf_counter()
        worker: Any = self
        weights_file = Path(weights_path) / str(manifest.get("file", WEIGHTS_FILE))
        with _profiled(manifest.get("step")):
            phases = reload_in_place(worker, weights_file)
            if phases is None:
                phases = {"mode": "vllm", "refreshed": _vllm_reload(worker, weights_path)}
        return {
            "step": manifest.get("step"),
            "tensors": manifest.get("tensors"),
            **phases,
            "reload_s": round(time.perf_counter() - start, 6),
        }


def _vllm_reload(worker: Any, weights_path: str) -> list[str]:
    """vLLM's own reload of the folder, then the LM heads' packed copies refreshed."""
    reload = getattr(worker, "reload_weights", None)
    if reload is not None:  # the worker's: sets the current vLLM config around the load
        reload(weights_path=weights_path)
    else:
        worker.model_runner.reload_weights(weights_path=weights_path)
    return _refresh_lm_heads(worker.model_runner.get_model())


@contextmanager
def _profiled(step: Any) -> Iterator[None]:
    """cProfile the block into $VFT_WEIGHT_SYNC_PROFILE/reload-STEP.prof when it is set."""
    folder = os.environ.get(PROFILE_ENV)
    if not folder:
        yield
        return
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        os.makedirs(folder, exist_ok=True)
        profile.dump_stats(os.path.join(folder, f"reload-{step}.prof"))


def _refresh_lm_heads(model: Any) -> list[str]:
    """Re-run weight post-processing of every ParallelLMHead (idempotent: it repacks from the
    current weight and keeps it); returns the modules refreshed."""
    from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead

    refreshed = []
    for name, module in model.named_modules():
        method = getattr(module, "quant_method", None)
        if isinstance(module, ParallelLMHead) and method is not None:
            method.process_weights_after_loading(module)
            refreshed.append(name)
    return refreshed
