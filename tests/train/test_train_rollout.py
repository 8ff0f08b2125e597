"""Multi-turn rollouts as TRL's `rollout_func` runs them, against a chat server.

The server here is a small HTTP server on 127.0.0.1 that speaks the part of vLLM's
OpenAI chat API the environments' own loops use (`return_token_ids`, sampled-token
logprobs), backed by the real tiny model generating with transformers and its real chat
template. The environment's loop (the built-in Wordle, a classic `MultiTurnEnv`), the
token stream and the masks are all real.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("transformers")
pytest.importorskip("verifiers")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vft.train import tiny

    torch.manual_seed(0)
    path = tiny.build(tmp_path_factory.mktemp("m") / "tiny")
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    lock = threading.Lock()
    seen: list[dict] = []

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
            self._send({"object": "list", "data": [{"id": "vft-tiny", "object": "model"}]})

        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(req)
            assert req["return_token_ids"] and req["logprobs"]
            prompt = tok.apply_chat_template(
                req["messages"], add_generation_prompt=True, tokenize=False
            )
            ids = tok(prompt, add_special_tokens=False)["input_ids"]
            with lock, torch.no_grad():
                out = model.generate(
                    torch.tensor([ids]),
                    max_new_tokens=min(req.get("max_tokens") or req["max_completion_tokens"], 6),
                    do_sample=True,
                    output_scores=True,
                    return_dict_in_generate=True,
                    pad_token_id=0,
                    eos_token_id=tok.eos_token_id,
                )
            new = out.sequences[0, len(ids) :].tolist()
            lps = [
                torch.log_softmax(s[0], -1)[t].item() for s, t in zip(out.scores, new, strict=False)
            ]
            text = tok.decode(new, skip_special_tokens=True)
            self._send(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": "vft-tiny",
                    "prompt_token_ids": ids,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text or "."},
                            "finish_reason": "stop"
                            if new and new[-1] == tok.eos_token_id
                            else "length",
                            "token_ids": new,
                            "logprobs": {
                                "content": [
                                    {"token": "x", "logprob": lp, "bytes": [], "top_logprobs": []}
                                    for lp in lps
                                ]
                            },
                        }
                    ],
                    "usage": {
                        "prompt_tokens": len(ids),
                        "completion_tokens": len(new),
                        "total_tokens": len(ids) + len(new),
                    },
                }
            )

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", tok, seen
    httpd.shutdown()


def test_wordle_rollout_keeps_one_token_stream_with_env_turns_masked(server):
    from vft.train import envs
    from vft.train.envs.trl_glue import RESULT_KEY, TrlGlue, discover_server

    url, tok, seen = server
    adapter = envs.load("wordle", {"num_examples": 2})
    glue = TrlGlue(
        adapter,
        rollout=True,
        server=lambda: discover_server(url),
        sampling={"temperature": 1.0, "max_tokens": 30},
        tokenizer=tok,
    )
    try:
        rows = glue.train_dataset()
        prompts = [rows[0]["prompt"]] * 2 + [rows[1]["prompt"]] * 2  # two generations each
        out = glue.rollout_func(prompts, None)
    finally:
        glue.close()

    assert {len(v) for v in out.values()} == {4}
    assert seen[0]["model"] == "vft-tiny"
    assert (seen[0].get("max_tokens") or seen[0].get("max_completion_tokens")) == 30
    assert seen[0]["messages"][0]["content"].startswith("Let's play Wordle")
    for prompt_ids, ids, mask, lps, result in zip(
        out["prompt_ids"],
        out["completion_ids"],
        out["env_mask"],
        out["logprobs"],
        out[RESULT_KEY],
        strict=True,
    ):
        why = (result.completion, tok.decode(ids), mask)
        assert len(ids) == len(mask) == len(lps), why
        assert tok.decode(prompt_ids).startswith("<|user|>Let's play Wordle"), why
        assert 0 < sum(mask) <= 30, why  # the model's tokens fit the episode's budget
        env_text = tok.decode([t for t, m in zip(ids, mask, strict=True) if not m])
        if 0 in mask:  # a later turn: the game's feedback sits in the stream, masked
            assert "guesses left" in env_text, why
            assert "<|assistant|>" in env_text, why  # the next turn's generation prompt
        assert all(lp is not None and lp <= 0 for lp, m in zip(lps, mask, strict=True) if m)
        assert all(lp is None for lp, m in zip(lps, mask, strict=True) if not m)
        assert result.turns == 1 + len([m for m in result.completion if m["role"] == "user"]), why
        assert 0 <= result.reward <= 1.7
    assert any(0 in m for m in out["env_mask"]), "no episode reached a second turn"
