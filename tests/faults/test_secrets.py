"""Secrets never leave: every place a secret could show up, tried with a real one.

Each case puts a secret (the value of a secret environment variable, or a key-shaped
string nobody declared) where a user could, runs the real command or a real supervised
process, then scans everything that came out (stdout, stderr, every file it wrote) for
it. A recipe that holds a secret is refused in one line (exit 2) that names the key and
never the value; everything else is masked. The keys are made up at run time, so none is
written in this repository.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from tests.reliability import case
from vft.core.node.supervisor import run_node
from vft.core.plan import NodeContext
from vft.testing import run_vft

ALNUM = string.ascii_letters + string.digits
_rng = random.Random(7)


def _random(chars: str, n: int) -> str:
    return "".join(_rng.choice(chars) for _ in range(n)) + "7"  # a digit, as real keys have


def hf_token() -> str:
    return "hf_" + _random(ALNUM, 33)


def wandb_key() -> str:
    return _random("0123456789abcdef", 39)


# every kind of key vft must recognise without being told, by its shape
KEY_SHAPES: dict[str, Callable[[], str]] = {
    "hf": hf_token,
    "wandb": wandb_key,
    "openai": lambda: "sk-" + _random(ALNUM, 47),
    "openai-project": lambda: "sk-proj-" + _random(ALNUM + "_-", 63),
    "modal-id": lambda: "ak-" + _random(ALNUM, 21),
    "modal-secret": lambda: "as-" + _random(ALNUM, 21),
}


def seen(secrets: Iterable[str], texts: Iterable[str] = (), folder: Path | None = None) -> int:
    """How many times any of `secrets` occurs in `texts` and in every file under `folder`
    (but the recipe the test wrote: that is the input)."""
    blobs = [t.encode() for t in texts]
    if folder is not None and folder.exists():
        blobs += [
            p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != RECIPE_FILE
        ]
    return sum(blob.count(s.encode()) for blob in blobs for s in secrets)


RECIPE_FILE = "r.toml"
RECIPE_TEXT = """name = {name}

[model]
name = {model}
params_b = 0.0001

[environment]
id = "vft_smoke"

[resources]
gpus = "cpu"

[run]
output_dir = "outputs"
"""


def recipe_with(
    tmp_path: Path, extra: str = "", name: str = "secrets", model: str = "vft-tiny"
) -> Path:
    """A CPU recipe (run folders under `tmp_path`) with `extra` TOML tables appended."""
    path = tmp_path / RECIPE_FILE
    path.write_text(RECIPE_TEXT.format(name=f'"{name}"', model=f'"{model}"') + "\n" + extra)
    return path


def refused(result, key: str, secrets: list[str], folder: Path) -> None:
    """Exit 2, one line naming `key` and saying it looks like a secret; the secret nowhere."""
    count = seen(secrets, [result.stdout, result.stderr], folder)
    case(secrets_seen=count)
    assert count == 0
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vft: error: {key}: looks like a secret")
    assert "through the environment" in lines[0]


# -- a recipe that holds a secret is refused, naming the key --------------------------------


@pytest.mark.parametrize(
    ("var", "extra", "key"),
    [
        ("HF_TOKEN", '[trainer]\nargs = ["--token", "{s}"]\n', "trainer.args[1]"),
        ("WANDB_API_KEY", '[inference]\nextra_args = ["--key={s}"]\n', "inference.extra_args[0]"),
        ("MODAL_TOKEN_SECRET", '[backend.modal]\npip = ["{s}"]\n', "backend.modal.pip[0]"),
        ("MY_SERVICE_PASSWORD", "", "model.name"),
    ],
    ids=["trainer.args", "inference.extra_args", "backend-table", "model.name"],
)
def test_recipe_holding_a_secret_of_the_environment_is_refused(tmp_path, var, extra, key):
    secret = _random(ALNUM, 23)  # not key-shaped: known only as the variable's value
    path = recipe_with(tmp_path, extra.format(s=secret), model=secret if not extra else "vft-tiny")
    result = run_vft("plan", path, cwd=tmp_path, env={var: secret})
    refused(result, key, [secret], tmp_path / "outputs")


def test_environment_args_holding_a_secret_are_refused_in_json_too(tmp_path):
    secret = _random(ALNUM, 23)
    path = recipe_with(tmp_path)
    for args, key in [
        (f'environment.args.dataset="{secret}"', "environment.args.dataset"),
        ('environment.args.api_key="anything-at-all"', "environment.args.api_key"),
    ]:
        result = run_vft(
            "plan", path, "--json", "--set", args, cwd=tmp_path, env={"HF_TOKEN": secret}
        )
        refused(result, key, [secret, "anything-at-all"], tmp_path / "outputs")


@pytest.mark.parametrize("kind", KEY_SHAPES)
def test_key_shaped_value_in_a_recipe_is_refused_though_not_in_the_environment(tmp_path, kind):
    key = KEY_SHAPES[kind]()
    path = recipe_with(tmp_path, f'\n[trainer]\nargs = ["--api", "{key}"]\n')
    result = run_vft("plan", path, cwd=tmp_path)
    refused(result, "trainer.args[1]", [key], tmp_path / "outputs")


def test_secret_of_a_listed_modal_secret_is_refused(tmp_path):
    """A variable named after an entry of `[backend.modal] secrets` is a secret too."""
    secret = _random(ALNUM, 19)
    path = recipe_with(
        tmp_path,
        f'\n[inference]\nextra_args = ["{secret}"]\n\n[backend.modal]\nsecrets = ["my-creds"]\n',
    )
    result = run_vft("plan", path, cwd=tmp_path, env={"MY_CREDS": secret})
    refused(result, "inference.extra_args[0]", [secret], tmp_path / "outputs")


def test_run_name_shaped_like_a_key_is_refused(tmp_path):
    key = hf_token()
    path = recipe_with(tmp_path, name=key)
    result = run_vft("plan", path, cwd=tmp_path)
    refused(result, "name", [key], tmp_path / "outputs")


def test_dry_run_writes_no_plan_json_with_a_secret(tmp_path):
    """`vft run --dry-run` writes the run folder: a refused recipe writes nothing at all."""
    secret = hf_token()
    path = recipe_with(tmp_path, f'\n[trainer]\nargs = ["{secret}"]\n')
    result = run_vft("run", path, "--dry-run", cwd=tmp_path, env={"HF_TOKEN": secret})
    refused(result, "trainer.args[0]", [secret], tmp_path)
    assert not (tmp_path / "outputs").exists()


# -- error lines quote what the user typed: masked -------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("plan", "{recipe}", "--set", "trainer.max_steps={s}"),
        ("plan", "{recipe}", "--set", "trainer.{s}=1"),
        ("plan", "{recipe}", "--set", "name={s}!"),
        ("plan", "{s}.toml"),
        ("status", "{s}"),
        ("logs", "{s}"),
        ("stop", "{s}"),
    ],
    ids=["bad-value", "unknown-key", "bad-name", "recipe-path", "status", "logs", "stop"],
)
@pytest.mark.parametrize("source", ["environment", "key-shaped"])
def test_error_lines_never_quote_a_secret(tmp_path, argv, source):
    secret = _random(ALNUM, 23) if source == "environment" else hf_token()
    env = {"WANDB_API_KEY": secret} if source == "environment" else {}
    args = [a.format(s=secret, recipe=recipe_with(tmp_path)) for a in argv]
    result = run_vft(*args, cwd=tmp_path, env=env)
    count = seen([secret], [result.stdout, result.stderr], tmp_path)
    case(secrets_seen=count)
    assert count == 0, result.stderr
    assert result.returncode == 2 and result.stderr.startswith("vft: error: ")
    assert "***" in result.stderr


# -- logs, the console and run.json of real supervised processes: masked ------------------------


def _run(plan, attempt) -> int:
    return run_node(plan, attempt, NodeContext(0, ("127.0.0.1",), str(attempt.path)))


def _outputs(attempt, capfd) -> tuple[list[str], Path]:
    out = capfd.readouterr()
    return [out.out, out.err], attempt.path


@pytest.mark.parametrize("kind", [*KEY_SHAPES, "api_key=..."])
def test_key_shaped_output_is_masked_in_logs_console_and_records(
    proc, make_plan, new_attempt, monkeypatch, capfd, kind
):
    """A key nobody declared (a program prints a key it read from a file, say)."""
    key = KEY_SHAPES[kind]() if kind in KEY_SHAPES else "api_key=" + _random(ALNUM, 31)
    monkeypatch.setenv("VFT_FIXTURE_SETTING", key)  # an ordinary name: only the shape tells
    plan = make_plan(
        proc("trainer", "trainer.py", "--print-env", "VFT_FIXTURE_SETTING", "--steps", "1")
    )
    attempt = new_attempt(plan)
    assert _run(plan, attempt) == 0
    texts, folder = _outputs(attempt, capfd)
    secret = key.removeprefix("api_key=")
    count = seen([secret], texts, folder)
    case(secrets_seen=count)
    assert count == 0
    assert "VFT_FIXTURE_SETTING is " in attempt.log_path("trainer").read_text()


def test_failing_process_quoting_a_key_is_masked_in_the_failure_and_run_json(
    proc, make_plan, new_attempt, monkeypatch, capfd
):
    """The failure report repeats the last log lines on the console and in run.json."""
    key = wandb_key()
    monkeypatch.setenv("VFT_FIXTURE_SETTING", key)
    plan = make_plan(
        proc("trainer", "trainer.py", "--print-env", "VFT_FIXTURE_SETTING", "--exit", "3")
    )
    attempt = new_attempt(plan)
    assert _run(plan, attempt) == 3
    texts, folder = _outputs(attempt, capfd)
    count = seen([key], texts, folder)
    case(secrets_seen=count)
    assert count == 0
    assert "VFT_FIXTURE_SETTING is ***" in texts[0]
    assert attempt.record()["status"] == "failed"
