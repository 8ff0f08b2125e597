"""`python -m vft.train.envs.describe ENV_ID [--args JSON]`: facts about an environment.

(`describe ID1 ID2 ... [--args '{"ID1": {...}}']` prints a JSON list instead, one entry
per id, `{"id", "error"}` for one that failed: `vft envs` lists them that way.)

Loads the environment (as the trainer would, with `environment.args`) and prints one
JSON object on stdout:

    {"id", "api": "legacy"|"v1", "multi_turn", "uses_tools", "needs_server",
     "agents": [seats], "eval_split": {"present", "size"}, "train_size",
     "rewards": [{"name", "weight"}], "metrics": [names], "accepted_args": [names]|null,
     "source": module file, ... API-specific extras (harness, sampling_args, ...)}

`vft plan` runs it in a subprocess (so the planner never imports verifiers) and reads it
with `vft.core.planning.environment_facts.EnvironmentFacts.from_dict`.

Exit codes: 0 facts printed; 1 the environment's code raised (one line on stderr:
`environment ENV_ID: <Type>: <message> (at <file>:<line>)`); 2 not found, bad usage, or
arguments the environment does not take (one line on stderr: `environment.args: 'ID'
does not accept 'x' (...)`: a classic `load_environment()`'s signature is checked before
calling it, a v1 taskset's config refuses them when it loads).
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import sys
from typing import Any


class UnacceptedArgs(ValueError):
    """`environment.args` names a key the environment's `load_environment()` does not take."""


def check_args(env_id: str, args: dict[str, Any]) -> None:
    """Raise UnacceptedArgs (its message the planner's one line) for a key a classic
    environment's `load_environment()` would reject with a TypeError from its own frame;
    a `**kwargs` signature takes anything, and a v1 taskset's config refuses its own
    (`forbidden_keys` reads that refusal)."""
    if not args:
        return
    from vft.core.planning.environment_facts import unaccepted_args
    from vft.train import envs

    module = envs.find_module(env_id)
    load = getattr(module, "load_environment", None)
    try:
        if envs.detect(module) != "legacy" or load is None:
            return
        params = inspect.signature(load).parameters.values()
    except (TypeError, ValueError):  # not an environment, or no signature: load says why
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    by_name = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted = [p.name for p in params if p.kind in by_name]
    line = unaccepted_args(env_id, args, accepted)
    if line:
        raise UnacceptedArgs(line)


def forbidden_keys(exc: BaseException, args: dict[str, Any]) -> list[str]:
    """The `args` keys a pydantic config refused as extra (a v1 taskset's config), when
    that is all `exc` (or an exception it wraps) says; [] otherwise."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        errors = getattr(exc, "errors", None)
        if type(exc).__name__ == "ValidationError" and callable(errors):
            try:
                found = [(e.get("type"), e.get("loc") or ()) for e in errors()]
            except Exception:  # not pydantic's: nothing to read
                return []
            keys = [str(loc[-1]) for kind, loc in found if kind == "extra_forbidden" and loc]
            if found and len(keys) == len(found) and all(k in args for k in keys):
                return sorted(keys)
            return []
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return []


def describe(env_id: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """The facts of `env_id` loaded with `args` (raises UnacceptedArgs, or what
    `vft.train.envs.load` raises)."""
    import asyncio

    from vft.train import envs

    check_args(env_id, args or {})
    try:
        adapter = envs.load(env_id, args or {})
    except Exception as exc:
        refused = forbidden_keys(exc, args or {})
        if refused:  # a v1 taskset's config forbids them: the same line as a classic one's
            keys = ", ".join(map(repr, refused))
            raise UnacceptedArgs(
                f"environment.args: {env_id!r} does not accept {keys} (its taskset's config "
                "forbids keys it does not declare)"
            ) from None
        raise
    try:
        return adapter.facts()
    finally:
        asyncio.run(adapter.aclose())


def describe_many(env_ids: list[str], args: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Facts for each id (one process: verifiers is imported once); a failure is an
    entry `{"id", "error"}` with describe's one line."""
    from vft.train import envs

    out: list[dict[str, Any]] = []
    for env_id in env_ids:
        try:
            out.append(describe(env_id, args.get(env_id) or {}))
        except UnacceptedArgs as exc:
            out.append({"id": env_id, "error": str(exc)})
        except Exception as exc:
            err = envs.find_environment_error(exc)
            line = err.line() if err else f"environment {env_id}: {type(exc).__name__}: {exc}"
            out.append({"id": env_id, "error": line})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vft.train.envs.describe", description=__doc__)
    parser.add_argument("env_id", nargs="+")
    parser.add_argument(
        "--args",
        default="{}",
        help="environment.args as a JSON object (with several ids: an object of id -> args)",
    )
    ns = parser.parse_args(argv)
    if len(ns.env_id) > 1:
        logging.disable(logging.WARNING)
        real_stdout, sys.stdout = sys.stdout, sys.stderr
        try:
            facts_list = describe_many(ns.env_id, json.loads(ns.args))
        finally:
            sys.stdout = real_stdout
        print(json.dumps(facts_list, default=str), flush=True)
        return 0
    ns.env_id = ns.env_id[0]
    try:
        args = json.loads(ns.args)
    except ValueError as exc:
        print(f"describe: --args is not JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(args, dict):
        print("describe: --args must be a JSON object", file=sys.stderr)
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.disable(logging.WARNING)  # environments log while loading; stdout is JSON only
    from vft.train import envs

    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # an environment that prints while loading must not break the JSON
    try:
        facts = describe(ns.env_id, args)
    except envs.EnvironmentNotFound as exc:
        print(f"environment {ns.env_id}: {exc}", file=sys.stderr)
        return 2
    except UnacceptedArgs as exc:
        print(exc, file=sys.stderr, flush=True)
        return 2
    except Exception as exc:
        err = envs.find_environment_error(exc)
        line = err.line() if err else envs.EnvironmentCodeError(ns.env_id, exc).line()
        print(line, file=sys.stderr, flush=True)
        return 1
    finally:
        sys.stdout = real_stdout
    print(json.dumps(facts, default=str), flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # environments may leave threads or signal handlers behind
