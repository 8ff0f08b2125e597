"""Preflight for this machine: are the plan's GPUs here, free and big enough; are its ports?

GPUs are read through NVML (pynvml when installed, else `nvidia-smi`), only those an
existing CUDA_VISIBLE_DEVICES leaves visible; the plan's device ids index that list.
`shortfall` is the cheap look `vft plan` and `vft init` take (one query, no process list,
nothing run when there is no driver, never torch). Tests put a fake `nvidia-smi` first on
PATH: that is the seam.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field, replace

from vft.core.plan import Plan, Ports, Role

NVIDIA_SMI_TIMEOUT_S = 15
LOOK_TIMEOUT_S = 5  # `vft plan` and `vft init` only warn: a hung driver must not hang them
BUSY_MIB = 512  # less than this on a GPU is a display or a driver, not a job
LOCAL_PORT_KEYS = ("inference", "weight_sync", "rendezvous")  # dp_rpc, control: multi-node


@dataclass(frozen=True)
class Gpu:
    index: int  # physical index, as nvidia-smi numbers it
    uuid: str
    name: str
    total_mib: int
    free_mib: int
    processes: tuple[tuple[int, int], ...] = field(default=())  # (pid, used MiB)

    @property
    def busy(self) -> bool:
        return sum(mib for _, mib in self.processes) >= BUSY_MIB


def query_gpus(
    *, processes: bool = True, timeout: float = NVIDIA_SMI_TIMEOUT_S
) -> tuple[list[Gpu] | None, str]:
    """Every NVIDIA GPU of this machine, or None with the reason none can be seen.
    `processes=False` skips the list of what runs on them (one nvidia-smi call, not two)."""
    with contextlib.suppress(Exception):
        return _query_nvml(processes), "NVML"
    smi = shutil.which("nvidia-smi")
    if smi is None:  # no driver installed: nothing is run
        return None, "nvidia-smi not found on PATH"
    try:
        gpus = _run_smi(
            smi,
            timeout,
            "--query-gpu=index,uuid,name,memory.total,memory.free",
            "--format=csv,noheader,nounits",
        )
        apps = ""
        if processes:
            apps = _run_smi(
                smi,
                timeout,
                "--query-compute-apps=gpu_uuid,pid,used_memory",
                "--format=csv,noheader,nounits",
            )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"nvidia-smi failed: {exc}"
    return parse_smi(gpus, apps), "nvidia-smi"


def _run_smi(smi: str, timeout: float, *args: str) -> str:
    out = subprocess.run([smi, *args], capture_output=True, text=True, timeout=timeout, check=True)
    return out.stdout


def visible_gpus(timeout: float = LOOK_TIMEOUT_S) -> tuple[list[Gpu] | None, str]:
    """The GPUs a process started here would see (CUDA_VISIBLE_DEVICES applied), without
    their process lists; None with the reason when no NVIDIA GPU can be seen at all."""
    gpus, source = query_gpus(processes=False, timeout=timeout)
    if gpus is None:
        return None, source
    return visible(gpus, os.environ.get("CUDA_VISIBLE_DEVICES")), source


def found_text(gpus: list[Gpu] | None, source: str) -> str:
    """What this machine has, as the end of "this machine has ...": "no NVIDIA GPU (why)",
    "none visible" or "1 visible (NVIDIA H200)"."""
    if gpus is None:
        return f"no NVIDIA GPU ({source})"
    if not gpus:
        return "no NVIDIA GPU visible (CUDA_VISIBLE_DEVICES hides them all)"
    return f"{len(gpus)} visible ({', '.join(sorted({g.name for g in gpus}))})"


def shortfall(plan: Plan) -> str | None:
    """One line when this machine has fewer NVIDIA GPUs than a GPU plan's node needs, i.e.
    when `vft run -b local` will refuse it; None for a CPU plan or enough GPUs. Said at
    plan time, so the user learns it before writing more of the recipe."""
    if plan.is_cpu:
        return None
    gpus, source = visible_gpus()
    if gpus is not None and len(gpus) >= plan.gpus_per_node:
        return None
    return (
        f"resources.gpus: the plan needs {plan.gpus_per_node} x {plan.gpu_type}, this machine "
        f"has {found_text(gpus, source)}, so `vft run` here will refuse it; use "
        '--backend modal, or resources.gpus = "cpu" with the smoke-sized model '
        '(model.name = "vft-tiny")'
    )


def parse_smi(gpus_csv: str, apps_csv: str) -> list[Gpu]:
    """nvidia-smi's CSV (noheader, nounits) into Gpu records."""
    used: dict[str, list[tuple[int, int]]] = {}
    for row in _rows(apps_csv):
        if len(row) >= 3 and row[1].isdigit():
            mib = int(row[2]) if row[2].isdigit() else 0
            used.setdefault(row[0], []).append((int(row[1]), mib))
    found = []
    for row in _rows(gpus_csv):
        if len(row) < 5 or not row[0].isdigit():
            continue
        index, uuid, name, total, free = row[:5]
        found.append(
            Gpu(int(index), uuid, name, _mib(total), _mib(free), tuple(used.get(uuid, ())))
        )
    return found


def _rows(csv: str) -> list[list[str]]:
    return [[c.strip() for c in line.split(",")] for line in csv.splitlines() if line.strip()]


def _mib(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        return 0


def _query_nvml(processes: bool = True) -> list[Gpu]:
    import pynvml  # optional: nvidia-ml-py

    pynvml.nvmlInit()
    try:
        found = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            procs = tuple(
                (p.pid, (p.usedGpuMemory or 0) >> 20)
                for p in (pynvml.nvmlDeviceGetComputeRunningProcesses(h) if processes else ())
            )
            name = pynvml.nvmlDeviceGetName(h)
            uuid = pynvml.nvmlDeviceGetUUID(h)
            found.append(
                Gpu(
                    i,
                    uuid.decode() if isinstance(uuid, bytes) else uuid,
                    name.decode() if isinstance(name, bytes) else name,
                    mem.total >> 20,
                    mem.free >> 20,
                    procs,
                )
            )
        return found
    finally:
        pynvml.nvmlShutdown()


def visible(gpus: list[Gpu], cuda_visible: str | None) -> list[Gpu]:
    """The GPUs a process started here would see, in CUDA's order."""
    if cuda_visible is None:
        return list(gpus)
    chosen = []
    for token in (t.strip() for t in cuda_visible.split(",")):
        if not token:
            break
        match = [g for g in gpus if (token.isdigit() and g.index == int(token))]
        match = match or [g for g in gpus if token.startswith("GPU-") and g.uuid.startswith(token)]
        if not match:
            break  # CUDA stops at the first invalid entry
        chosen.append(match[0])
    return chosen


def gpu_problems(plan: Plan, gpus: list[Gpu]) -> tuple[list[str], list[str]]:
    """(problems, notes) for node 0 of a GPU plan on these visible GPUs."""
    need = plan.gpus_per_node
    what = f"{need} x {plan.gpu_type}"
    names = sorted({g.name for g in gpus})
    if len(gpus) < need:
        have = f"{len(gpus)} visible ({', '.join(names)})" if gpus else "none visible"
        return [f"resources.gpus: the plan needs {what}, this machine has {have}"], []
    problems, notes = [], [f"GPUs: {len(gpus)} visible ({', '.join(names)}), the plan uses {need}"]
    if plan.gpu_type and not any(_same_type(plan.gpu_type, n) for n in names):
        notes.append(f"the plan was sized for {plan.gpu_type}; this machine has {', '.join(names)}")
    util = plan.inference.gpu_memory_utilization or 0.0
    trainer_gib = plan.memory.get("trainer_gib_per_gpu")
    for p in plan.processes_on(0):
        for d in p.devices:
            if d >= len(gpus):
                problems.append(f"{p.name} uses GPU {d}, only {len(gpus)} visible")
                continue
            g = gpus[d]
            if g.busy:
                who = ", ".join(f"pid {pid} ({mib} MiB)" for pid, mib in g.processes)
                problems.append(f"GPU {g.index} is busy: {who}")
                continue
            want = util * g.total_mib if p.role == Role.INFERENCE else (trainer_gib or 0) * 1024
            if want and g.free_mib < want:
                problems.append(
                    f"GPU {g.index} has {g.free_mib / 1024:.1f} GiB free, "
                    f"{p.name} needs about {want / 1024:.1f} GiB"
                )
    return problems, notes


def _same_type(plan_type: str, smi_name: str) -> bool:
    family = plan_type.split("-")[0].upper()
    return family in smi_name.upper().replace(" ", "")


# -- ports -------------------------------------------------------------------------------
def port_free(port: int) -> bool:
    """Whether a server could bind `port` on every interface now (TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_ports(requested: Ports) -> Ports:
    """`requested` with every port a single-node run binds here moved when it is taken."""
    wanted = {k: v for k, v in requested.as_dict().items() if k in LOCAL_PORT_KEYS}
    used = set(requested.as_dict().values())
    moved: dict[str, int] = {}
    for key, port in wanted.items():
        if not port_free(port):
            moved[key] = _free_port(used)
            used.add(moved[key])
    return replace(requested, **moved)


def _free_port(avoid: set[int]) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("0.0.0.0", 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port
