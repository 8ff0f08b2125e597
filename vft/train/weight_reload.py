"""Reload a complete weight set into a live vLLM model on the CPU, in place.

vLLM's generic `reload_weights` is built for any quantization: it puts every layer back on
the meta device, buffers each loader call under a copy-counting dispatch mode, allocates
fresh tensors layer by layer, re-runs each layer's post-processing and copies the result
back. On the CPU with an unquantized model the only post-processing is the GEMM dispatch
(`dispatch_cpu_unquantized_gemm`): a linear's weight is reordered into a oneDNN handler
(its plain weight dropped), and embeddings are prepacked as GEMMs too. So this path:

1. once, gives every packed linear back a plain weight (from the metadata vLLM records for
   reloading) that stays as its staging buffer: warm memory, loaded in place each time
   (the price: the server holds its linears twice, plain and packed);
2. maps the set (`safe_open`: tensors are views of the file, nothing is read twice) and
   runs the model's own `load_weights` on it: fused projections, tied embeddings and
   names are the model's business, each loader copies straight into the live tensor;
3. refuses a set that leaves any parameter unloaded (the server would serve stale rows);
4. redoes the GEMM dispatch only for what computes through a packed copy: every linear
   and the LM head (tied or not); an input embedding beside a head is not repacked (vLLM
   packs it at load, nothing calls it as a GEMM), its packed copy replaced by a plain
   linear on the live weight.

Anything else (a quantized model, LoRA, another platform) goes through vLLM's reload.
Importable without vLLM or torch; they are imported inside the functions.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

#: set on the model once its packed linears have staging weights
_PREPARED = "_vft_inplace_reload"
#: ``VFT_WEIGHT_RELOAD=vllm`` in the server's environment forces vLLM's generic reload
MODE_ENV = "VFT_WEIGHT_RELOAD"
#: the tensor names of the last set loaded whole: the next set must have the same
_NAMES = "_vft_weight_names"


def reload_in_place(worker: Any, weights_file: str | Path) -> dict[str, Any] | None:
    """Load `weights_file` into the worker's model in place; None when this model needs
    vLLM's generic reload instead. Returns the phases' seconds."""
    model = worker.model_runner.get_model()
    if not supported(worker, model):
        return None
    import torch
    from safetensors import safe_open
    from vllm.config import set_current_vllm_config

    start = time.perf_counter()
    faults = _page_faults()
    phases: dict[str, Any] = {"mode": "in-place"}
    with torch.no_grad(), set_current_vllm_config(worker.vllm_config):
        if not getattr(model, _PREPARED, False):
            phases["staged"] = _stage_packed_weights(model)
            setattr(model, _PREPARED, True)
        staged = time.perf_counter()
        with safe_open(str(weights_file), framework="pt", device="cpu") as f:
            names = list(f.keys())
            _check_names(model, names, weights_file)  # before a single byte is copied
            loaded = set(model.load_weights((name, f.get_tensor(name)) for name in names))
        copied = time.perf_counter()
        missing = sorted({name for name, _ in model.named_parameters()} - loaded)
        if missing:  # only a first set can get here (later ones are checked by name first)
            raise ValueError(
                f"weight set {Path(weights_file).parent} left {len(missing)} of the server's "
                f"parameters unloaded (e.g. {', '.join(missing[:3])}); the server holds a "
                "partial update"
            )
        repacked = _repack(model)
        setattr(model, _NAMES, frozenset(names))
    done = time.perf_counter()
    phases["repacked"] = len(repacked)
    phases["heads"] = [name for name, head in repacked if head]
    phases.update(
        stage_s=round(staged - start, 6),
        load_s=round(copied - staged, 6),
        pack_s=round(done - copied, 6),
        # pages the kernel handed the server meanwhile (first touches of new memory, pages
        # of the mapped set): a figure that does not move with the machine's load
        page_faults=_page_faults() - faults,
    )
    return phases


def _page_faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def supported(worker: Any, model: Any) -> bool:
    """The in-place path: an unquantized model without LoRA on vLLM's CPU platform."""
    from vllm.platforms import current_platform

    runner = worker.model_runner
    return bool(
        os.environ.get(MODE_ENV, "auto") != "vllm"
        and current_platform.is_cpu()
        and getattr(runner.model_config, "quantization", None) is None
        and not getattr(runner, "lora_config", None)
        and hasattr(model, "load_weights")
    )


def _check_names(model: Any, names: list[str], weights_file: str | Path) -> None:
    """Refuse, before loading anything, a set whose tensors differ from the last whole one."""
    known = getattr(model, _NAMES, None)
    if known is None or known == set(names):
        return
    missing, unknown = sorted(known - set(names)), sorted(set(names) - known)
    raise ValueError(
        f"weight set {Path(weights_file).parent} does not match the served model: "
        f"{len(missing)} tensors missing (e.g. {', '.join(missing[:3]) or '-'}), "
        f"{len(unknown)} unknown (e.g. {', '.join(unknown[:3]) or '-'}); nothing was loaded"
    )


def _packed_modules(model: Any) -> list[tuple[str, Any]]:
    """(name, module) of every layer whose forward runs through `cpu_linear`."""
    from vllm.model_executor.layers.linear import UnquantizedLinearMethod
    from vllm.model_executor.layers.vocab_parallel_embedding import UnquantizedEmbeddingMethod

    kinds = (UnquantizedLinearMethod, UnquantizedEmbeddingMethod)
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(getattr(module, "quant_method", None), kinds)
        and hasattr(module, "cpu_linear")
    ]


def _stage_packed_weights(model: Any) -> int:
    """Give each linear whose plain weight vLLM dropped (packed into oneDNN) a real one
    again, shaped and typed as at load (vLLM's reload metadata, weight loaders included).
    The packed handler keeps serving until the set is loaded and repacked."""
    from vllm.model_executor.model_loader.reload.layerwise import get_layerwise_info
    from vllm.model_executor.model_loader.reload.meta import (
        materialize_layer,
        restore_layer_on_meta,
    )

    staged = 0
    for name, module in _packed_modules(model):
        weight = getattr(module, "weight", None)
        if weight is None or weight.numel() > 0:
            continue
        info = get_layerwise_info(module)
        meta = info.restore_metadata[0].get("weight")
        if meta is None or meta.numel() == 0:
            raise RuntimeError(f"vft weight reload: no load-time shape for {name}.weight")
        restore_layer_on_meta(module, info)
        materialize_layer(module, info)
        staged += 1
    return staged


def _repack(model: Any) -> list[tuple[str, bool]]:
    """Redo vLLM's CPU GEMM dispatch for each packed layer from its (new) live weight,
    keeping that weight as the next load's staging buffer; returns (name, is an LM head)
    of each layer repacked."""
    import torch
    from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm
    from vllm.model_executor.layers.vocab_parallel_embedding import (
        ParallelLMHead,
        VocabParallelEmbedding,
    )

    packed = _packed_modules(model)
    has_head = any(isinstance(module, ParallelLMHead) for _, module in packed)
    repacked = []
    for name, module in packed:
        plain_embedding = isinstance(module, VocabParallelEmbedding) and not isinstance(
            module, ParallelLMHead
        )
        if plain_embedding and has_head:
            # an input embedding beside an LM head: its forward is F.embedding on the live
            # weight. vLLM packs it as a GEMM all the same (a head-less model computes its
            # logits with it, and is repacked below); should anything call it as one here,
            # compute from the live weight rather than a packed copy of an old one.
            module.cpu_linear = torch.nn.functional.linear
            continue
        dispatch_cpu_unquantized_gemm(module, remove_weight=False)
        repacked.append((name, isinstance(module, ParallelLMHead)))
    return repacked
