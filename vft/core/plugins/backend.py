"""The `Backend` base class: runs a Plan somewhere (capabilities: vft/core/planning/capabilities.py).

A backend receives a Plan (vft/core/plan.py), never a Recipe, and runs each node's share of
it through the one node entry, `python -m vft.core.node RUN_DIR --node-rank N --addresses
a,b` (`vft.plugin.node_argv` builds it; `start_node` is the same as a function).
docs/plugins.md walks through writing one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from vft.core.planning.capabilities import Capabilities

if TYPE_CHECKING:
    from pydantic import BaseModel

    from vft.core.plan import Plan, Ports
    from vft.core.runs.folders import Attempt


class Backend:
    """Runs a Plan somewhere. Subclass it, set `name` and `capabilities`, register it.

    Modules defining a backend must stay light: heavy libraries (modal, torch) are
    imported inside the methods that need them, so `vft plan` stays fast.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: options model (pydantic, or vft.plugin.Table) for the recipe's `[backend.<name>]`
    #: table, or None if it takes none;
    #: "module:Class" imports it on first use, so that listing backends or planning for
    #: another backend never builds it (reading the attribute always gives the class)
    options_model: ClassVar[type[BaseModel] | str | None] = None
    #: modules it needs to launch or reach a run (an optional extra), and what installs them
    requires: ClassVar[tuple[str, ...]] = ()
    install_hint: ClassVar[str | None] = None
    #: True when a transient failure is restarted by vft starting a new attempt itself
    #: (then `launch` takes `restarts=N`); False when the backend's platform retries (Modal)
    restarts_by_relaunch: ClassVar[bool] = False
    #: `resources.restarts` when the recipe leaves it out
    default_restarts: ClassVar[int] = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        target = cls.__dict__.get("options_model")
        if isinstance(target, str):
            cls.options_model = LazyModel(target)  # type: ignore[assignment]

    @classmethod
    def missing(cls) -> list[str]:
        """The modules of `requires` not installed here, found without importing them (so
        `vft backends` and `vft plan` stay fast and work without them)."""
        return [module for module in cls.requires if not _installed(module)]

    @classmethod
    def require(cls, what: str) -> None:
        """Refuse `what` (a run, reaching a run) in one line when a required module is missing."""
        missing = cls.missing()
        if missing:
            from vft.core.errors import PreflightError

            raise PreflightError(
                f"--backend: {what} on {cls.name!r} needs {', '.join(missing)}, "
                "which is not installed here",
                hint=cls.install_hint or f"pip install {' '.join(missing)}",
            )

    def describe(self, plan: Plan) -> list[tuple[str, str]]:
        """Extra (label, text) rows for `vft plan`: image steps, batch script, ..."""
        return []

    def choose_ports(self, requested: Ports) -> Ports:
        """The ports the run will bind: `requested`, with those already taken where it will
        run moved to free ones. Called once, before planning. Backends whose nodes are
        fresh machines keep `requested`.
        """
        return requested

    def check(self, plan: Plan, *, force: bool = False) -> list[str]:
        """Preflight before anything is started or paid for; raise PreflightError to refuse.

        Returns notes to show the user (ports moved, GPUs found, ...).
        """
        return []

    def launch(self, plan: Plan, attempt: Attempt, *, detach: bool) -> int:
        """Run the plan; return its exit code, or 0 at once when `detach` is true.

        `attempt.path` already holds plan.json and the rendered files; record progress
        with `attempt.update(status=..., exit_code=...)` so `vft status` can read it.
        """
        raise NotImplementedError

    def status(self, attempt: Attempt) -> dict[str, Any]:
        """The run's state: at least {"status": ..., "exit_code": ...}."""
        return attempt.record()

    # logs and outputs: by default the attempt folder is on this machine or a filesystem it
    # mounts (local, a cluster's shared disk); a backend whose folder is remote overrides them

    def logs(self, attempt: Attempt, *, follow: bool, process: str | None) -> Iterator[str]:
        """Lines of the run's logs (one process's when `process` is set); wait for more if `follow`."""
        from vft.core.runs.folders import FINISHED
        from vft.core.runs.logs import read_logs

        def running() -> bool:
            return self.status(attempt).get("status") not in FINISHED

        return read_logs(attempt, process=process, follow=follow, running=running)

    def stop(self, attempt: Attempt) -> None:
        """Stop every process of the run (the supervisor turns SIGTERM into a clean stop)."""
        raise NotImplementedError

    def list_outputs(self, attempt: Attempt) -> list[tuple[str, int]]:
        """(relative path, size in bytes) of every file the run wrote."""
        from vft.core.runs.outputs import list_files

        return list_files(attempt)

    def get_outputs(self, attempt: Attempt, dest: Path, *, prefix: str = "") -> list[Path]:
        """Download the run's files (those under `prefix`) into `dest`; return what was written."""
        from vft.core.runs.outputs import copy_files

        return copy_files(attempt, dest, prefix=prefix)


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or broken package is not usable either
        return False


class LazyModel:
    """A backend's `options_model` named as "module:Class": imported, and checked to be an
    options model, the first time it is read."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._model: type[BaseModel] | None = None

    def __get__(self, obj: object, owner: type | None = None) -> type[BaseModel]:
        if self._model is None:
            self._model = self._load(owner)
        return self._model

    def _load(self, owner: type | None) -> type[BaseModel]:
        import importlib

        from vft.core.errors import UserError

        name = getattr(owner, "name", "?")
        module, _, attr = self.target.partition(":")
        try:
            model = getattr(importlib.import_module(module), attr)
        except Exception as exc:  # a plugin's bug, said in one line
            raise UserError(
                f"--backend: the options of backend {name!r} ({self.target}) cannot be "
                f"loaded: {type(exc).__name__}: {exc}"
            ) from None
        if not callable(getattr(model, "model_validate", None)):
            raise UserError(
                f"--backend: backend {name!r}: options_model {self.target} is not an options model"
            )
        return model
