"""Secrets redaction and the console merge, in isolation."""

from __future__ import annotations

import io
import os
import threading
import time

from vft.core.node.logrelay import (
    CONSOLE_BACKLOG,
    VERBOSE_VAR,
    ConsoleMerge,
    make_pipe,
    relay,
    tail_lines,
)
from vft.core.secrets import Redactor, is_secret_name, redact


def test_secret_names():
    for name in ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "MODAL_TOKEN_SECRET"):
        assert is_secret_name(name)
    assert is_secret_name("OPENAI_API_KEY") and is_secret_name("DB_PASSWORD")
    assert not is_secret_name("CUDA_VISIBLE_DEVICES") and not is_secret_name("MAX_TOKENS")


def test_redact_hides_values_and_name_value_pairs():
    env = {"HF_TOKEN": "hf_abcdef123", "PATH": "/usr/bin", "SHORT_KEY": "abc"}
    text = "token hf_abcdef123 and MY_API_KEY=sk-live-999 and PATH /usr/bin abc"
    assert redact(text, env) == "token *** and MY_API_KEY=*** and PATH /usr/bin abc"
    red = Redactor.for_env(env)
    assert red.bytes(b"x hf_abcdef123 y") == b"x *** y"
    assert red.obj({"argv": ["--t", "hf_abcdef123"], "env": {"WANDB_API_KEY": "w"}}) == {
        "argv": ["--t", "***"],
        "env": {"WANDB_API_KEY": "***"},
    }


def test_key_shapes_are_masked_alike_in_text_and_bytes_and_words_are_not():
    hf = "hf_" + "aB3" * 11
    sk = "sk-proj-" + "Xy7_" * 6
    red = Redactor()
    for text, want in [
        (f"token {hf} end", "token *** end"),
        (f"wandb {'0f' * 20}.", "wandb ***."),
        (f"--key={sk}", "--key=***"),
        ("modal ak-" + "Q1w2E3r4T5y6U7i8" + " x", "modal *** x"),
        ("x-api-key: Zx9Qw8Er7Ty6Ui5Op4As", "x-api-key: ***"),
        ("api_key=" + "Zx9Qw8Er7Ty6Ui5Op4As\r50%\n", "api_key=***\r50%\n"),
    ]:
        assert red.text(text) == want
        assert red.bytes(text.encode()) == want.encode()
    for text in [
        "tokens/s=12345.6 loss=0.1 max_tokens: 16 eos_token: <|im_end|>",
        "sha256 " + "a" * 64 + " scikit-learn sk-learn-is-a-great-library has-SomeWordsHere",
        "cache_key=/home/user/data/file.json",
    ]:
        assert red.text(text) == text and red.bytes(text.encode()) == text.encode()
    odd = b"\xff\xfe not utf-8 \x80 " + hf.encode() + b"\n"  # other bytes kept exactly
    assert red.bytes(odd) == b"\xff\xfe not utf-8 \x80 ***\n"


def test_redact_defaults_to_this_process_environment(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "wandb-secret-42")
    assert redact("key is wandb-secret-42") == "key is ***"


class SlowOut(io.BytesIO):
    """A terminal that takes 0.2 s per write (a paused or remote console)."""

    def write(self, data):  # type: ignore[override]
        time.sleep(0.2)
        return super().write(data)


def test_console_drops_instead_of_blocking_and_says_so(tmp_path):
    out = SlowOut()
    console = ConsoleMerge(out, names=["trainer"], verbose=True)
    chunk = b"line\n" * (CONSOLE_BACKLOG // 5 // 4)
    started = time.monotonic()
    for _ in range(8):  # twice the backlog
        console.offer("trainer", chunk)
    assert time.monotonic() - started < 0.5  # offering never waits for the terminal
    console.close(timeout=10)
    text = out.getvalue().decode()
    assert "bytes too fast to show here; all in logs/trainer.log" in text
    assert text.startswith("[trainer]")


def test_relay_writes_everything_redacted_and_splits_nothing(tmp_path):
    read_fd, write_fd = make_pipe()
    log = tmp_path / "p.log"
    out = io.BytesIO()
    console = ConsoleMerge(out, names=["p"], verbose=True)
    thread = relay("p", read_fd, log, Redactor(["s3cr3t-value"]), console)

    def write() -> None:
        for i in range(2000):
            os.write(write_fd, f"{i} s3cr3t-value\r{i} progress\n".encode())
        os.close(write_fd)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join()
    thread.join(5)
    console.close()
    data = log.read_bytes()
    assert data.count(b"\n") == 2000 and b"s3cr3t" not in data
    assert out.getvalue().splitlines()[0] == b"[p]   0 progress"  # the \r resolved on screen
    assert tail_lines(log, 2) == ["1998 progress", "1999 progress"]


# -- the quiet console ---------------------------------------------------------------------

CHATTER = [
    b"[2026-12-04 22:46:47,785] [WARNING] [real_accelerator.py:213:get_accelerator] "
    b"Setting accelerator to CPU.\n",
    b"\n",
    b"Writing model shards:   0%|   | 0/1\rWriting model shards: 100%|#| 1/1\n",
    b"vft_smoke: an environment's own line\n",
    b"{'loss': 0.1, 'grad_norm': 2.7}\n",
    b"/site-packages/x.py:12: UserWarning: something deprecated\n",
    b"  warnings.warn(\n",
]
SHOWN = [
    b"vft.train: step 1/2 | reward 0.5 \xc2\xb1 0.1 | loss 0.1000\n",
    b"vft: a line of another vft program\n",
    b"ERROR 12-04 22:00:01 [engine.py:12] the engine died\n",
    b"\x1b[1;31mERROR\x1b[0m:root:coloured\n",
    b"[2026-12-04 22:46:47,785] [ERROR] [x.py:1:f] deepspeed's own error\n",
    b"trainer: RuntimeError: fixture failure, exiting 3\n",  # a launcher relaying the cause
    b"shm.cpp:12:10: fatal error: shm.h: No such file or directory\n",
    b"usage: train.py [-h]\rtrain.py: error: the following arguments are required\n",
]
TRACEBACK = (
    b"Traceback (most recent call last):\n"
    b'  File "a.py", line 3, in f\n'
    b"    g()\n"
    b"    ^^^\n"
    b"KeyError: 'inner'\n"
    b"\n"
    b"The above exception was the direct cause of the following exception:\n"
    b"\n"
    b"Traceback (most recent call last):\n"
    b'  File "a.py", line 9, in <module>\n'
    b"    f()\n"
    b"RuntimeError: outer\n"
)


def test_quiet_console_shows_own_lines_tracebacks_and_errors_and_says_where_the_rest_is():
    out = io.BytesIO()
    console = ConsoleMerge(out, names=["trainer"], verbose=False)
    for chunk in CHATTER[:3]:
        console.offer("trainer", chunk)
    for chunk in SHOWN:
        console.offer("trainer", chunk)
        console.offer("trainer", b"".join(CHATTER))  # chatter between every shown line
    cut = TRACEBACK.index(b"KeyError")  # a traceback across two chunks (cut at a line end)
    console.offer("trainer", TRACEBACK[:cut])
    console.offer("trainer", TRACEBACK[cut:] + CHATTER[0])
    console.close()
    lines = out.getvalue().splitlines()
    assert all(line.startswith(b"[trainer]") for line in lines)
    assert (
        lines[0]
        == b"[trainer] (its other output is in logs/trainer.log; `vft run -v` shows it here)"
    )
    tb = [line for line in TRACEBACK.splitlines() if line]
    want = [line.rsplit(b"\r", 1)[-1].rstrip() for line in SHOWN]
    assert [line[len(b"[trainer] ") :] for line in lines[1:]] == [*want, *tb]


def test_verbose_console_shows_everything_and_reads_vft_verbose(monkeypatch):
    for verbose, env in ((True, None), (None, "1"), (None, "true")):
        if env is not None:
            monkeypatch.setenv(VERBOSE_VAR, env)
        out = io.BytesIO()
        console = ConsoleMerge(out, names=["trainer"], verbose=verbose)
        assert console.verbose
        console.offer("trainer", b"".join(CHATTER))
        console.close()
        assert b"Setting accelerator to CPU." in out.getvalue()
        assert out.getvalue().count(b"\n") == len(CHATTER)
    monkeypatch.setenv(VERBOSE_VAR, "0")
    assert not ConsoleMerge(io.BytesIO()).verbose
    monkeypatch.delenv(VERBOSE_VAR)
    assert not ConsoleMerge(io.BytesIO()).verbose


def test_a_flood_of_chatter_is_filtered_without_slowing_the_relay(tmp_path):
    """20 MiB of library lines: all in the log, none on the quiet console, at relay speed."""
    read_fd, write_fd = make_pipe()
    log = tmp_path / "p.log"
    out = io.BytesIO()
    console = ConsoleMerge(out, names=["p"], verbose=False)
    thread = relay("p", read_fd, log, Redactor(), console)
    line = b"step 000123 loss=0.123456 reward=0.987654 tokens/s=12345.6 " + b"x" * 40 + b"\n"
    block = line * 1000
    blocks = (20 << 20) // len(block)
    started = time.monotonic()
    for _ in range(blocks):
        os.write(write_fd, block)
    os.write(write_fd, b"vft.train: done\n")
    os.close(write_fd)
    thread.join(30)
    took = time.monotonic() - started
    console.close()
    assert log.stat().st_size == blocks * len(block) + 16
    assert out.getvalue().splitlines()[-1].split() == [b"[p]", b"vft.train:", b"done"]
    assert len(out.getvalue().splitlines()) == 2  # the note, the own line
    assert took < 10


def _run_chatty(proc, make_plan, new_attempt, capfd, *args: str) -> tuple[int, str, str]:
    from vft.core.node.supervisor import run_node
    from vft.core.plan import NodeContext

    plan = make_plan(proc("trainer", "chatty.py", *args))
    attempt = new_attempt(plan)
    code = run_node(plan, attempt, NodeContext(0, ("127.0.0.1",), str(attempt.path)))
    return code, capfd.readouterr().out, attempt.log_path("trainer").read_text()


def test_a_real_process_on_the_quiet_console_and_its_whole_traceback(
    proc, make_plan, new_attempt, capfd, monkeypatch
):
    monkeypatch.delenv(VERBOSE_VAR, raising=False)
    code, out, log = _run_chatty(proc, make_plan, new_attempt, capfd, "--steps", "3", "--fail")
    assert code == 1
    trainer = [line.split(None, 1)[1] for line in out.splitlines() if line.startswith("[trainer]")]
    assert trainer[0].startswith("(its other output is in logs/trainer.log")
    assert trainer[1:5] == [
        "vft.train: loading torch, transformers and TRL...",
        *(f"vft.train: step {i}/3 | reward 0.5 ± 0.1 | loss 0.1000" for i in (1, 2, 3)),
    ]
    # the whole chained traceback, live: longer than the 20 lines the failure report repeats
    traceback = trainer[5:]
    assert len(traceback) > 20 and traceback.count("Traceback (most recent call last):") == 2
    assert traceback[-1] == "RuntimeError: fixture failure at the bottom of a deep stack"
    assert "KeyError: 'the innermost cause'" in traceback
    for noise in ("Setting accelerator to CPU", "Writing model shards", "vft_smoke:", "'loss'"):
        assert noise not in out and noise in log


def test_verbose_shows_a_real_process_whole_output(
    proc, make_plan, new_attempt, capfd, monkeypatch
):
    monkeypatch.setenv(VERBOSE_VAR, "1")
    code, out, _ = _run_chatty(proc, make_plan, new_attempt, capfd)
    assert code == 0
    for noise in (
        "Setting accelerator to CPU",
        "Writing model shards: 100%",
        "vft_smoke:",
        "'loss'",
    ):
        assert noise in out
    assert "its other output is in" not in out
