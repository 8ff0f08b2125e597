"""Secrets redaction and the console merge, in isolation."""

from __future__ import annotations

import io
import os
import threading
import time

from vft.core.node.logrelay import CONSOLE_BACKLOG, ConsoleMerge, make_pipe, relay, tail_lines
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
    console = ConsoleMerge(out, names=["trainer"])
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
    console = ConsoleMerge(out, names=["p"])
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
