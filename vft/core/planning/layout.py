"""Which GPU of which node serves inference and which trains: the split and device ids."""

from __future__ import annotations

from dataclasses import dataclass

from vft.core.errors import PlanError


@dataclass(frozen=True)
class NodeSlots:
    """The devices of one node, by role."""

    node: int
    inference: tuple[int, ...]
    trainer: tuple[int, ...]


@dataclass(frozen=True)
class Layout:
    """A GPU split over `nodes` nodes of `per_node` GPUs each."""

    per_node: int
    tensor_parallel: int
    inference_gpus: int
    trainer_gpus: int
    slots: tuple[NodeSlots, ...]

    @property
    def data_parallel(self) -> int:
        return self.inference_gpus // self.tensor_parallel

    @property
    def colocated(self) -> bool:
        """No inference GPUs: vLLM runs inside the trainer processes (TRL's colocate mode)."""
        return self.inference_gpus == 0

    @property
    def trainer_nodes(self) -> tuple[NodeSlots, ...]:
        return tuple(s for s in self.slots if s.trainer)

    @property
    def inference_nodes(self) -> tuple[NodeSlots, ...]:
        return tuple(s for s in self.slots if s.inference)


def default_inference_gpus(per_node: int, nodes: int, tensor_parallel: int) -> int:
    """DESIGN.md's split: trainer = max(1, G // 4), the rest inference, rounded to tp.

    Capped by how many whole tp-replicas the nodes hold, so a replica never straddles nodes.
    """
    total = per_node * nodes
    trainer = max(1, total // 4)
    rounded = ((total - trainer) // tensor_parallel) * tensor_parallel
    capacity = nodes * (per_node // tensor_parallel) * tensor_parallel
    if capacity == total:
        capacity -= tensor_parallel
    return min(rounded, capacity)


def assign(per_node: int, nodes: int, inference_gpus: int, tensor_parallel: int) -> Layout:
    """Place inference replicas first (never straddling a node), the trainer on what is left.

    Raises PlanError when the split cannot be laid out (tp too large, uneven trainer nodes).
    """
    total = per_node * nodes
    tp = tensor_parallel
    if tp > per_node:
        raise PlanError(
            f"resources.tensor_parallel: {tp} is more than the {per_node} GPUs of one node; "
            "a replica must fit on one node"
        )
    if inference_gpus % tp:
        raise PlanError(
            f"resources.tensor_parallel: {tp} does not divide the inference share of "
            f"{inference_gpus} GPUs; choose inference_gpus as a multiple of {tp}"
        )
    if inference_gpus < tp or inference_gpus >= total:
        raise PlanError(
            f"resources.inference_gpus: {inference_gpus} leaves no GPU for "
            f"{'the trainer' if inference_gpus >= total else 'inference'}; GRPO with a vLLM server "
            f"needs at least {tp} inference GPU(s) and 1 trainer GPU of the {total} requested"
        )
    layout = _place(per_node, nodes, inference_gpus, tp)
    if not _even(layout):
        shown = ", ".join(map(str, valid_inference_gpus(per_node, nodes, tp)[:6])) or "none"
        raise PlanError(
            "resources.inference_gpus: the trainer would have "
            + ", ".join(f"{len(s.trainer)} GPUs on node {s.node}" for s in layout.trainer_nodes)
            + f"; accelerate needs the same number on every node (valid inference_gpus: {shown})"
        )
    return layout


def splits(per_node: int, nodes: int, inference_gpus: int, tp: int) -> bool:
    """Whether `assign` would accept this split, told by arithmetic alone (no layout is
    built), so that searching every split of many nodes stays linear in the GPUs."""
    total = per_node * nodes
    if tp > per_node or inference_gpus % tp or inference_gpus < tp or inference_gpus >= total:
        return False
    return _trainer_counts(per_node, nodes, inference_gpus, tp) is not None


def valid_inference_gpus(per_node: int, nodes: int, tp: int) -> list[int]:
    """Every inference share `assign` accepts, smallest first."""
    return [i for i in range(tp, per_node * nodes, tp) if splits(per_node, nodes, i, tp)]


def _trainer_counts(per_node: int, nodes: int, inference_gpus: int, tp: int) -> set[int] | None:
    """The trainer GPUs per trainer node of `_place`'s split: whole replicas fill node after
    node; None when the replicas do not fit or the trainer nodes would differ."""
    per = per_node // tp  # replicas one node holds
    replicas = inference_gpus // tp
    full, rest = divmod(replicas, per)
    if full + (1 if rest else 0) > nodes:
        return None
    counts = {per_node - per * tp} if full else set()
    if rest:
        counts.add(per_node - rest * tp)
    if full + (1 if rest else 0) < nodes:
        counts.add(per_node)
    counts.discard(0)
    return counts if len(counts) <= 1 else None


def colocated(per_node: int, nodes: int, tensor_parallel: int) -> Layout:
    """Every GPU of every node trains, and generates with the vLLM inside its process.

    TRL runs one vLLM engine per `tensor_parallel` consecutive trainer processes; such a
    group must not straddle two nodes, so tp divides the GPUs of a node.
    """
    if per_node % tensor_parallel:
        raise PlanError(
            f"resources.tensor_parallel: {tensor_parallel} does not divide the {per_node} GPU(s) "
            "of a node; colocated vLLM shards a model over trainer processes of one node "
            f"(choose among {', '.join(str(d) for d in range(1, per_node + 1) if per_node % d == 0)})"
        )
    slots = tuple(NodeSlots(n, (), tuple(range(per_node))) for n in range(nodes))
    return Layout(per_node, tensor_parallel, 0, per_node * nodes, slots)


def _place(per_node: int, nodes: int, inference_gpus: int, tp: int) -> Layout:
    inference: list[list[int]] = [[] for _ in range(nodes)]
    node, used = 0, 0
    for _ in range(inference_gpus // tp):
        if per_node - used < tp:
            node, used = node + 1, 0
        if node >= nodes:
            raise PlanError(
                f"resources.inference_gpus: {inference_gpus} GPUs in replicas of tensor_parallel = "
                f"{tp} do not fit on {nodes} node(s) of {per_node} GPUs"
            )
        inference[node].extend(range(used, used + tp))
        used += tp
    slots = tuple(
        NodeSlots(n, tuple(inference[n]), tuple(range(len(inference[n]), per_node)))
        for n in range(nodes)
    )
    trainer_gpus = sum(len(s.trainer) for s in slots)
    return Layout(per_node, tp, inference_gpus, trainer_gpus, slots)


def _even(layout: Layout) -> bool:
    return len({len(s.trainer) for s in layout.trainer_nodes}) <= 1
