"""Weight sync through files vs the floor, by model size.

For each model (the offline tiny one; random Llama configs of ~10M and ~100M parameters with
tied embeddings, built offline), a real `vllm serve` on the CPU is started as the planner
writes it, then the weights are nudged and pushed with `FileSync.push` (write the set, the
server's reload, the prefix-cache reset) several times. The floor is what any file transport
pays at least: `safetensors.save_file` + `load_file` of the same tensors. Target: sync/floor
<= 1.5x. Each model's last push is checked: the server's prompt logprobs equal the trainer's.

On the CPU the trainer's side (write) costs what save_file does; the excess is inside vLLM's
reload ("(worker)"): its layerwise reload re-runs every linear's oneDNN weight prepack
(create_onednn_mm), prepacks embed_tokens as a GEMM too, and the tied lm_head is repacked
by the vft worker extension; the small models pay a fixed ~40-80 ms of RPC and reload setup.

Run from the repository root: python bench/weight_sync.py [--sizes tiny,10m,100m] [--pushes 5]
[--sync-dir /dev/shm]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_cold_start import start, stop  # noqa: E402  (this folder, run as a script)

#: random Llama shapes (tied embeddings, like Qwen3-0.6B): name -> LlamaConfig fields
SHAPES: dict[str, dict[str, Any]] = {
    "10m": {
        "vocab_size": 8192,
        "hidden_size": 256,
        "intermediate_size": 1024,
        "num_hidden_layers": 6,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "100m": {
        "vocab_size": 32000,
        "hidden_size": 768,
        "intermediate_size": 2048,
        "num_hidden_layers": 10,
        "num_attention_heads": 12,
        "num_key_value_heads": 4,
    },
}


def build(size: str, dest: Path) -> Path:
    """The model folder for `size`: vft-tiny itself, or a random Llama with its tokenizer."""
    from vft.train import tiny

    if size == "tiny":
        return tiny.build(dest)
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = SHAPES[size]
    config = LlamaConfig(
        **shape,
        head_dim=shape["hidden_size"] // shape["num_attention_heads"],
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tiny.build_tokenizer().save_pretrained(dest)  # ids 0..103 in use; the rest never asked for
    return dest


def prompt_logprobs(url: str, model: str, ids: list[int]) -> Any:
    import requests
    import torch

    body: dict[str, Any] = {"model": model, "prompt": ids, "max_tokens": 1, "prompt_logprobs": 0}
    entries = requests.post(f"{url}/v1/completions", json=body, timeout=120).json()
    entries = entries["choices"][0]["prompt_logprobs"]
    return torch.tensor(
        [e[str(ids[i])]["logprob"] for i, e in enumerate(entries) if e], dtype=torch.float64
    )


def floor_s(tensors: dict[str, Any], work: Path, runs: int) -> float:
    """safetensors save_file + load_file of the same tensors (median)."""
    from safetensors.torch import load_file, save_file

    work.mkdir(parents=True, exist_ok=True)
    path = work / "floor.safetensors"
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        save_file(tensors, str(path), metadata={"format": "pt"})
        loaded = load_file(str(path))
        times.append(time.perf_counter() - start)
        del loaded
        path.unlink()
    return statistics.median(times)


def bench(size: str, work: Path, pushes: int, sync_base: Path | None) -> dict[str, Any]:
    import requests
    import torch
    from transformers import AutoModelForCausalLM

    from vft.train.weight_files import FileSync

    run_dir = work / size
    model_dir = build(size, run_dir / "initial-model")
    overrides = () if size == "tiny" else (f'model.name="{model_dir}"',)
    server = start(run_dir, overrides)
    try:
        served = requests.get(f"{server.url}/v1/models", timeout=10).json()["data"][0]["id"]
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        params = dict(model.named_parameters())
        n_params = sum(p.numel() for p in params.values())
        where = (sync_base / f"vft-bench-{os.getpid()}" if sync_base else run_dir) / size
        sync = FileSync(server.url, where / "weights", timeout_s=600, record=False)
        generator = torch.Generator().manual_seed(0)
        floors = []
        for step in range(pushes + 1):  # the first push warms caches and is not counted
            with torch.no_grad():
                for p in params.values():
                    p.add_(torch.randn(p.shape, generator=generator) * 1e-3)
            # the floor beside each push, so that both see the same load on the machine
            floors.append(floor_s({n: p.detach() for n, p in params.items()}, where, runs=1))
            sync.push(params, step)
        timings = sync.timings[1:]
        ids = list(range(6, 60))
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double().log_softmax(-1)
        trainer = logits[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
        error = (prompt_logprobs(server.url, served, ids) - trainer).abs().max().item()
        sync.close()
    finally:
        stop(server)
        if sync_base:
            shutil.rmtree(sync_base / f"vft-bench-{os.getpid()}", ignore_errors=True)
    return {
        "size": size,
        "params_m": n_params / 1e6,
        "mb": timings[-1].bytes / 1e6,
        "write": [t.write_s for t in timings],
        "reload": [t.reload_s for t in timings],
        "worker": [t.worker_s or 0.0 for t in timings],
        "reset": [t.reset_s for t in timings],
        "sync": [t.total_s for t in timings],
        "floor": floors[1:],
        "error": error,
        "cold_start": server.ready_s,
    }


COLUMNS = ("write", "reload", "worker", "reset", "sync", "floor")


def table(rows: list[dict[str, Any]], stat: Any, title: str) -> None:
    head = (
        f"{'model':<6} {'params':>8} {'MB':>7} {'write':>8} {'reload':>8} {'(worker)':>8} "
        f"{'reset':>7} {'sync':>8} {'floor':>8} {'ratio':>6} {'|server-trainer|':>17} "
        f"{'cold start':>10}"
    )
    print(f"\n{title}")
    print(head)
    print("-" * len(head))
    for r in rows:
        v = {k: stat(r[k]) for k in COLUMNS}
        ms = {k: f"{v[k] * 1e3:.0f}ms" for k in COLUMNS}
        print(
            f"{r['size']:<6} {r['params_m']:>7.1f}M {r['mb']:>7.1f} {ms['write']:>8} "
            f"{ms['reload']:>8} {ms['worker']:>8} {ms['reset']:>7} {ms['sync']:>8} "
            f"{ms['floor']:>8} {v['sync'] / v['floor']:>5.2f}x {r['error']:>17.1e} "
            f"{r['cold_start']:>9.1f}s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="tiny,10m,100m")
    parser.add_argument("--pushes", type=int, default=5)
    parser.add_argument(
        "--sync-dir",
        type=Path,
        default=None,
        help="write the sets (and the floor's file) under this folder, e.g. /dev/shm; "
        "default: the run folder, as the planner does",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vft-bench-sync-"))
    rows = []
    try:
        for size in args.sizes.split(","):
            row = bench(size, work, args.pushes, args.sync_dir)
            rows.append(row)
            med = statistics.median
            print(
                f"{size}: {row['params_m']:.1f}M params, sync {med(row['sync']) * 1e3:.0f} ms, "
                f"floor {med(row['floor']) * 1e3:.0f} ms (medians)",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = args.pushes
    table(rows, min, f"best of {n} pushes (the machine's own cost; the floor beside each push)")
    table(rows, statistics.median, f"median of {n} pushes")
    print(
        "sync = write + reload (the collective_rpc round trip; (worker): inside vLLM) + reset; "
        "floor = safetensors save_file + load_file; target: sync/floor <= 1.5x"
    )


if __name__ == "__main__":
    main()
