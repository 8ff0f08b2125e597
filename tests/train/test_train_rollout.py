"""Multi-turn rollouts as TRL's `rollout_func` runs them, against a completions server.

vLLM cannot run on a CPU, so the server here is a small HTTP server on 127.0.0.1 that
speaks the part of vLLM's OpenAI completions API the rollout uses (token-id prompts,
`return_token_ids`, sampled-token logprobs), backed by the real tiny model generating
with transformers. The environment's own `run()` loop, the token stream and the masks
are all real.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vft.core.planning.environments import PROJECT_ENVIRONMENTS

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vft.train import tiny

    path = tiny.build(tmp_path_factory.mktemp("m") / "tiny")
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._send({"data": [{"id": "vft-tiny"}]})

        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert req["return_token_ids"] and req["logprobs"] == 0
            ids = torch.tensor(req["prompt"])
            with lock, torch.no_grad():
                out = model.generate(
                    ids,
                    max_new_tokens=min(req["max_tokens"], 6),
                    do_sample=True,
                    output_scores=True,
                    return_dict_in_generate=True,
                    pad_token_id=0,
                )
            new = out.sequences[0, ids.shape[1] :].tolist()
            lps = [
                torch.log_softmax(s[0], -1)[t].item() for s, t in zip(out.scores, new, strict=False)
            ]
            self._send({"choices": [{"token_ids": new, "logprobs": {"token_logprobs": lps}}]})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", tok
    httpd.shutdown()


def test_wordle_rollout_keeps_one_token_stream_with_env_turns_masked(server, monkeypatch):
    monkeypatch.syspath_prepend(str(PROJECT_ENVIRONMENTS / "wordle"))
    from vft.train import environment as E
    from vft.train.main import dataset_rows
    from vft.train.rollout import make_env, rollout_func

    url, tok = server
    loaded = E.load("wordle", {"num_examples": 2})
    rollout = rollout_func(
        loaded, make_env(loaded, {"num_examples": 2}), tok, url, max_tokens=30, temperature=1.0
    )
    prompts = [row["prompt"] for row in dataset_rows(loaded)] * 2  # two generations each
    out = rollout(prompts, None)

    assert {len(v) for v in out.values()} == {4}
    for prompt_ids, ids, mask, lps in zip(
        out["prompt_ids"], out["completion_ids"], out["env_mask"], out["logprobs"], strict=True
    ):
        assert len(ids) == len(mask) == len(lps)
        assert tok.decode(prompt_ids).startswith("<|user|>let's play wordle")
        assert 0 < sum(mask) <= 30  # the model's tokens fit the budget
        env_text = tok.decode([t for t, m in zip(ids, mask, strict=True) if not m])
        if 0 in mask:  # a second turn happened: the game's feedback sits in the stream, masked
            assert "guesses left" in env_text
            assert "<|assistant|>" in env_text  # the next turn's generation prompt
        assert all(lp <= 0 for lp, m in zip(lps, mask, strict=True) if m)
    assert all(isinstance(r, float) and 0 <= r <= 1.7 for r in out["vft_reward"])
    assert any(0 in m for m in out["env_mask"]), "no episode reached a second turn"
