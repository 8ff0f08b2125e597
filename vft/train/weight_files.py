"""The files transport of weight sync, alone: tensors in, the vLLM server updated.

After each optimizer step TRL pushes the trainer's weights to the vLLM server. On GPUs it
streams them over an NCCL communicator; on a CPU plan (``inference.weight_sync = "files"``)
that communicator cannot exist, so instead:

1. every trainer rank takes part in gathering the parameters (ZeRO-3 shards one at a time);
2. the main process writes the whole state dict to ``ROOT/step-NNNNNN/model.safetensors``
   (a private temporary folder renamed into place, then the marker file ``vft-weights.json``
   last: a set without it is incomplete and the server refuses it);
3. it asks the server to load that folder (``POST /collective_rpc`` calling
   ``reload_weights_from_dir`` of :class:`vft.train.vllm_worker.FileSyncWorkerExtension`,
   which on the CPU copies it into the live tensors and repacks only the packed GEMMs:
   vft/train/weight_reload.py) and to drop its prefix cache (``POST /reset_prefix_cache``);
4. it keeps the last two sets (the one the server loaded last, and the one before).

Every request, and the whole sync, is bounded by ``inference.weight_sync_timeout_s``; a sync
that fails or stalls raises :class:`WeightSyncError` on every rank with one line saying which
side failed, so training never goes on against stale weights.

:class:`FileSync` is usable without a trainer; vft/train/weight_sync.py plugs it into
TRL's server mode.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: the file of one set of weights, and the marker written after it (its presence = complete)
WEIGHTS_FILE = "model.safetensors"
MARKER = "vft-weights.json"
#: per-sync timings, one JSON object a line, in the sync folder
TIMINGS_FILE = "timings.jsonl"
#: the environment variable the planner sets on the trainer process
DIR_ENV = "VFT_WEIGHT_SYNC_DIR"
RUN_DIR_PLACEHOLDER = "{{run_dir}}"
DEFAULT_TIMEOUT_S = 300.0
KEEP = 2  # sets kept on disk: the one the server loaded last, and the one before
RPC_METHOD = "reload_weights_from_dir"
CONNECT_TIMEOUT_S = 10.0


class WeightSyncError(RuntimeError):
    """A weight sync failed or stalled; the message is one line naming the side at fault."""


@dataclass(frozen=True)
class SyncTiming:
    """Where one sync's time went (seconds), for benches and the end-of-run summary."""

    step: int
    tensors: int
    bytes: int
    gather_s: float  # the trainer collecting the tensors (ZeRO-3 gathers); 0 without a trainer
    write_s: float  # safetensors + rename + marker
    reload_s: float  # the server loading the set (the collective_rpc round trip)
    worker_s: float | None  # of which inside the vLLM workers (slowest), as they report it
    reset_s: float  # the prefix cache reset
    total_s: float
    # the slowest worker's phases (load_s: the set copied into the live tensors, pack_s:
    # the GEMMs repacked, stage_s: first sync only), as it reports them
    phases: dict[str, float] | None = None


# -- the set on disk ----------------------------------------------------------------------


def step_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"step-{step:06d}"


def read_marker(directory: str | Path) -> dict[str, Any]:
    """The marker of a complete set; ValueError (one line) when the set is incomplete."""
    directory = Path(directory)
    marker = directory / MARKER
    if not directory.is_dir():
        raise ValueError(f"weight set {directory} does not exist")
    if not marker.is_file():
        raise ValueError(
            f"weight set {directory} is incomplete: no {MARKER} (the trainer writes it last); "
            "refusing to load it"
        )
    try:
        manifest: dict[str, Any] = json.loads(marker.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"weight set {directory}: unreadable {MARKER}: {exc}") from None
    weights = directory / str(manifest.get("file", WEIGHTS_FILE))
    size = weights.stat().st_size if weights.is_file() else None
    if size is None or size != manifest.get("bytes"):
        raise ValueError(
            f"weight set {directory} is incomplete: {weights.name} has {size} bytes, "
            f"{MARKER} says {manifest.get('bytes')}; refusing to load it"
        )
    return manifest


def write_set(
    tensors: Mapping[str, torch.Tensor], root: str | Path, step: int, *, reuse: Path | None = None
) -> Path:
    """Write a complete set for `step` under `root`; return its folder.

    The folder appears at once (a private temporary folder renamed into place) and its
    marker is written after the weights, itself by a rename: a reader that sees the marker
    sees every byte of the weights.

    `reuse` names an older set the server no longer reads: its marker is removed first (from
    then on it is incomplete and refused), its folder becomes the temporary one and its file
    is overwritten in place. Writing into pages the file already has costs a third of
    writing a new file on a CPU machine, where most of a fresh write is the kernel
    allocating and zeroing memory for it.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = step_dir(root, step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    if not _recycle(reuse, tmp, final):
        tmp.mkdir()
    weights = tmp / WEIGHTS_FILE
    save_tensors(tensors, weights, metadata={"format": "pt"})
    if final.exists():  # the same step again (a rerun): the server is not reading it now
        shutil.rmtree(final)
    os.replace(tmp, final)
    manifest = {
        "step": step,
        "file": WEIGHTS_FILE,
        "tensors": len(tensors),
        "bytes": (final / WEIGHTS_FILE).stat().st_size,
        "written_at": time.time(),
    }
    marker_tmp = final / f".{MARKER}.tmp"
    marker_tmp.write_text(json.dumps(manifest) + "\n")
    os.replace(marker_tmp, final / MARKER)
    return final


def _recycle(old: Path | None, tmp: Path, final: Path) -> bool:
    """Turn the set `old` into the temporary folder `tmp`, marker removed first."""
    if old is None or old == final or not (old / WEIGHTS_FILE).is_file():
        return False
    try:
        (old / MARKER).unlink(missing_ok=True)
        os.replace(old, tmp)
    except OSError:
        return False
    return True


#: torch dtype name -> safetensors dtype code
_DTYPE_CODES = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}


def save_tensors(
    tensors: Mapping[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> None:
    """Write `tensors` as a safetensors file straight from their memory.

    The same file `safetensors.torch.save_file` writes (a length, a JSON header, the raw
    bytes one tensor after another), but each tensor's bytes go from the tensor to the file
    in one copy, where `save_file` first copies every tensor into a bytes object; on a CPU
    that halves the trainer's part of a sync. A dtype outside the common ones goes through
    `save_file`."""
    import torch

    # the widest elements first: every tensor then starts aligned to its element size
    # (the data starts 8-byte aligned), as save_file lays them out
    items = sorted(
        ((name, t.detach()) for name, t in tensors.items()), key=lambda it: -it[1].element_size()
    )
    if any(
        str(t.dtype).removeprefix("torch.") not in _DTYPE_CODES or t.is_sparse for _, t in items
    ):
        from safetensors.torch import save_file

        save_file(dict(items), str(path), metadata=metadata)
        return
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    chunks = []
    offset = 0
    for name, tensor in items:
        data = tensor.to("cpu").contiguous().reshape(-1).view(torch.uint8)
        size = data.numel()
        header[name] = {
            "dtype": _DTYPE_CODES[str(tensor.dtype).removeprefix("torch.")],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + size],
        }
        chunks.append(data)
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned, as save_file writes it
    # no O_TRUNC: an existing file (a recycled set) is overwritten in place, then cut
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    with open(fd, "wb", buffering=0) as f:
        _write_all(f, len(raw).to_bytes(8, "little") + raw)
        for data in chunks:
            if data.numel():
                _write_all(f, data.numpy().data)
        f.truncate(8 + len(raw) + offset)


def _write_all(f: Any, data: bytes | memoryview) -> None:
    """One `write` may take fewer bytes than given (Linux stops at 2 GiB): write the rest."""
    view = memoryview(data).cast("B")
    while view:
        view = view[f.write(view) :]


def prune(root: str | Path, keep: int = KEEP, current: Path | None = None) -> None:
    """Delete all but the `keep` most recently written sets (never `current`, the one the
    server just loaded), and temporary folders of writers that died."""
    root = Path(root)

    def written(path: Path) -> float:
        marker = path / MARKER
        try:
            return (marker if marker.exists() else path).stat().st_mtime
        except OSError:
            return 0.0

    sets = sorted(
        (p for p in root.glob("step-*") if p.is_dir()), key=lambda p: (written(p), p.name)
    )
    if current is not None and current in sets:
        sets.remove(current)
        sets.append(current)
    for old in sets[: max(len(sets) - keep, 0)]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in root.glob(".tmp-step-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the transport ------------------------------------------------------------------------


class FileSync:
    """Push tensors to a `vllm serve` (dev mode, with the vft worker extension) via files.

    `push(named_tensors, step)` writes the set, has the server load it and reset its prefix
    cache, prunes old sets, and returns the timings (also appended to `timings`). Any failure
    raises WeightSyncError; the whole push is bounded by `timeout_s`.
    """

    def __init__(
        self,
        base_url: str,
        root: str | Path,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        *,
        keep: int = KEEP,
        record: bool = True,
    ) -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        self.root = Path(root)
        self.timeout_s = float(timeout_s)
        self.keep = keep
        self.record = record  # append each timing to ROOT/timings.jsonl
        self.timings: list[SyncTiming] = []
        self._written: list[Path] = []  # this transport's sets, oldest first
        self._session = requests.Session()  # no retries: a retry could outlive the deadline

    def close(self) -> None:
        self._session.close()

    def push(
        self,
        named_tensors: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]],
        step: int,
        *,
        gather_s: float = 0.0,
    ) -> SyncTiming:
        tensors = dict(
            named_tensors.items() if isinstance(named_tensors, Mapping) else named_tensors
        )
        start = time.perf_counter()
        deadline = start + self.timeout_s
        try:
            # the oldest set once `keep` exist: the server is done reading it (a reload
            # returns when the set is loaded, and the server keeps no view of its file)
            reuse = self._written[0] if len(self._written) >= self.keep else None
            directory = write_set(tensors, self.root, step, reuse=reuse)
            self._written = [d for d in self._written if d not in (reuse, directory)]
            self._written.append(directory)
        except OSError as exc:
            raise WeightSyncError(
                f"weight sync: the trainer could not write step {step}'s weights to "
                f"{self.root}: {exc}"
            ) from exc
        written = time.perf_counter()
        if written > deadline:
            raise WeightSyncError(
                f"weight sync: the trainer took {written - start:.0f} s to write step {step}'s "
                f"weights to {self.root}, past the {self.timeout_s:g} s limit (a slow disk?)"
            )
        results = self.reload(directory, step, deadline)
        reloaded = time.perf_counter()
        self.reset_prefix_cache(step, deadline)
        done = time.perf_counter()
        prune(self.root, self.keep, current=directory)
        timing = SyncTiming(
            step=step,
            tensors=len(tensors),
            bytes=sum(t.numel() * t.element_size() for t in tensors.values()),
            gather_s=round(gather_s, 6),
            write_s=round(written - start, 6),
            reload_s=round(reloaded - written, 6),
            worker_s=_worker_seconds(results),
            reset_s=round(done - reloaded, 6),
            total_s=round(done - start + gather_s, 6),
            phases=_worker_phases(results),
        )
        self.timings.append(timing)
        if self.record:
            with open(self.root / TIMINGS_FILE, "a") as f:
                f.write(json.dumps(asdict(timing)) + "\n")
        return timing

    def reload(self, directory: str | Path, step: int, deadline: float) -> Any:
        """Have the server load the set in `directory`; its per-worker results."""
        remaining = self._remaining(deadline, "reload_weights", step)
        body = {
            "method": RPC_METHOD,
            "kwargs": {"weights_path": str(directory)},  # collective_rpc passes strings only
            "timeout": remaining,  # the engine gives up too, instead of loading late
        }
        reply = self._post("/collective_rpc", body, "reload_weights", step, remaining)
        try:
            return reply.json().get("results")
        except ValueError:
            return None

    def reset_prefix_cache(self, step: int, deadline: float) -> None:
        """Drop KV blocks computed with the old weights; retried while requests hold some."""
        while True:
            remaining = self._remaining(deadline, "reset_prefix_cache", step)
            reply = self._post("/reset_prefix_cache", None, "reset_prefix_cache", step, remaining)
            try:
                ok = bool(reply.json().get("success", True))
            except (ValueError, AttributeError):
                ok = True  # older servers answer 200 with no body
            if ok:
                return
            time.sleep(min(0.05, max(deadline - time.perf_counter(), 0)))

    def _remaining(self, deadline: float, what: str, step: int) -> float:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise WeightSyncError(
                f"weight sync: the inference server at {self.base_url} did not finish {what} "
                f"within {self.timeout_s:g} s (step {step})"
            )
        return remaining

    def _post(
        self, path: str, body: Mapping[str, Any] | None, what: str, step: int, remaining: float
    ) -> Any:
        import requests

        url = f"{self.base_url}{path}"
        try:
            reply = self._session.post(
                url, json=body, timeout=(min(CONNECT_TIMEOUT_S, remaining), remaining)
            )
        except requests.Timeout:
            raise WeightSyncError(
                f"weight sync: the inference server at {self.base_url} did not answer {what} "
                f"within {self.timeout_s:g} s (step {step})"
            ) from None
        except requests.ConnectionError as exc:
            raise WeightSyncError(
                f"weight sync: the inference server at {self.base_url} is not reachable for "
                f"{what} (step {step}): {_reason(exc)}"
            ) from None
        if reply.status_code != 200:
            raise WeightSyncError(
                f"weight sync: the inference server at {self.base_url} returned "
                f"{reply.status_code} to {what} (step {step}): {_first_line(reply)}"
            )
        return reply


def _worker_seconds(results: Any) -> float | None:
    """The slowest worker's own reload time from the collective_rpc results, if reported."""
    seconds = [
        float(r["reload_s"]) for r in results or () if isinstance(r, dict) and "reload_s" in r
    ]
    return max(seconds) if seconds else None


def _worker_phases(results: Any) -> dict[str, float] | None:
    """The `*_s` phases (and page faults) the slowest worker reported, if any."""
    workers = [r for r in results or () if isinstance(r, dict) and "reload_s" in r]
    if not workers:
        return None
    slowest = max(workers, key=lambda r: float(r["reload_s"]))
    return {
        key: float(value)
        for key, value in slowest.items()
        if ((key.endswith("_s") and key != "reload_s") or key == "page_faults")
        and isinstance(value, (int, float))
    }


def _reason(exc: Exception) -> str:
    """`Connection refused` rather than urllib3's nested repr."""
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "Connection reset"):
        if known in text:
            return known.lower()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _first_line(reply: Any) -> str:
    """The server's error in one line: the JSON `error.message`/`detail`, else the text."""
    text = str(reply.text or "")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err:
            text = str(err)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else reply.reason or "no body"
    return line if len(line) <= 300 else line[:297] + "..."


def one_line(exc: BaseException) -> str:
    if isinstance(exc, WeightSyncError):
        return str(exc)
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return f"weight sync: {text}"


def summary(timings: list[SyncTiming], root: str | Path) -> str:
    """One line: how many syncs, how long they took (median, slowest), where they went."""
    if not timings:
        return f"weight sync: no syncs to {root}"
    total = [t.total_s for t in timings]
    med = statistics.median

    def ms(values: list[float]) -> str:
        return f"{med(values) * 1e3:.0f}"

    return (
        f"weight sync: {len(timings)} syncs of {timings[-1].bytes / 1e6:.1f} MB through {root}: "
        f"median {med(total):.3f} s (gather {ms([t.gather_s for t in timings])} ms, write "
        f"{ms([t.write_s for t in timings])} ms, reload {ms([t.reload_s for t in timings])} ms, "
        f"reset {ms([t.reset_s for t in timings])} ms), slowest {max(total):.3f} s"
    )
