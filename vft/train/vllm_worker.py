"""vLLM worker extension for the files weight-sync transport.

`vllm serve ... --worker-extension-cls vft.train.vllm_worker.FileSyncWorkerExtension` mixes
this class into every vLLM worker; the trainer then calls, through the dev-mode route
``POST /collective_rpc {"method": "reload_weights_from_dir", "kwargs": {"weights_path": DIR}}``,
:meth:`FileSyncWorkerExtension.reload_weights_from_dir` on each of them.

Importable without vLLM (vLLM and torch are imported inside the method). Attributes of a
worker extension must not clash with the worker's own, so the helpers are module functions.
"""

from __future__ import annotations

import time
from typing import Any

from vft.train.weight_files import read_marker


class FileSyncWorkerExtension:
    """Adds `reload_weights_from_dir` to a vLLM worker."""

    def reload_weights_from_dir(self, weights_path: str) -> dict[str, Any]:
        """Load the complete set in `weights_path` in place; refuse an incomplete one.

        After vLLM's in-place reload, refresh what it derives from weights it did not load:
        a tied lm_head (loaded through embed_tokens, never as lm_head.weight) keeps, on the
        CPU, a prepacked GEMM copy of the old embedding until its `process_weights_after_loading`
        runs again.
        """
        manifest = read_marker(weights_path)  # ValueError: the server answers 500 with it
        start = time.perf_counter()
        worker: Any = self
        reload = getattr(worker, "reload_weights", None)
        if reload is not None:  # the worker's: sets the current vLLM config around the load
            reload(weights_path=weights_path)
        else:
            worker.model_runner.reload_weights(weights_path=weights_path)
        refreshed = _refresh_lm_heads(worker.model_runner.get_model())
        return {
            "step": manifest.get("step"),
            "tensors": manifest.get("tensors"),
            "refreshed": refreshed,
            "reload_s": round(time.perf_counter() - start, 6),
        }


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
