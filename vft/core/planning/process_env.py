"""Default environment variables for the processes of a plan: policy as data, in one place."""

from __future__ import annotations

# every trainer process
TRAINER_ENV: dict[str, str] = {
    "PYTHONUNBUFFERED": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "NCCL_CUMEM_ENABLE": "0",
}

# a CPU plan's trainer threads per process: accelerate's default (all cores) was 3x slower
# for the smoke model on 2 cores, and a CPU vLLM server may share the machine
CPU_THREADS_PER_PROCESS = 1

# added for a CPU-only plan (no CUDA device is visible to the trainer)
CPU_TRAINER_ENV: dict[str, str] = {
    "CUDA_VISIBLE_DEVICES": "",
}
