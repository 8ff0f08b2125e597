"""The files transport's sets on disk, without a server: the safetensors vft writes, and a
set rewritten in place of an older one.

What the server does with a set is proven against a real `vllm serve` in
test_weight_sync.py; here, that what it reads is exactly what the trainer had.
"""

from __future__ import annotations

import json
import os

import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from vft.train.weight_files import (  # noqa: E402
    MARKER,
    WEIGHTS_FILE,
    read_marker,
    save_tensors,
    write_set,
)


def _tensors(scale: float = 1.0) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "model.embed_tokens.weight": torch.randn(96, 16) * scale,
        "model.layers.0.mlp.down_proj.weight": torch.randn(16, 40).t() * scale,  # a view
        "model.norm.weight": torch.ones(16, dtype=torch.bfloat16) * scale,
        "scalar": torch.tensor(3.5 * scale),
        "empty": torch.zeros(0, 4),
        "steps": torch.arange(5, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
        "half": torch.randn(7, dtype=torch.float16),
    }


def _same(loaded: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert set(loaded) == set(expected)
    for name, tensor in expected.items():
        assert loaded[name].dtype == tensor.dtype and loaded[name].shape == tensor.shape, name
        assert torch.equal(loaded[name], tensor), name


def test_save_tensors_writes_the_file_safetensors_reads(tmp_path):
    tensors = _tensors()
    path = tmp_path / "x.safetensors"
    save_tensors(tensors, path, metadata={"format": "pt"})
    _same(safetensors_torch.load_file(str(path)), tensors)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == {"format": "pt"}
    # the data starts 8-byte aligned, as save_file writes it
    header = int.from_bytes(path.read_bytes()[:8], "little")
    assert header % 8 == 0
    assert json.loads(path.read_bytes()[8 : 8 + header])["scalar"]["shape"] == []


def test_save_tensors_overwrites_a_longer_file_and_cuts_it(tmp_path):
    path = tmp_path / "x.safetensors"
    save_tensors({"big": torch.randn(1000, 100)}, path)
    small = {"small": torch.randn(3, 3)}
    save_tensors(small, path)
    _same(safetensors_torch.load_file(str(path)), small)
    assert path.stat().st_size < 1000 * 100 * 4


def test_an_older_set_is_rewritten_in_place_and_never_looks_complete_meanwhile(tmp_path):
    root = tmp_path / "weights"
    first = write_set(_tensors(1.0), root, 1)
    write_set(_tensors(2.0), root, 2)
    inode = (first / WEIGHTS_FILE).stat().st_ino

    third = write_set(_tensors(3.0), root, 3, reuse=first)

    assert not first.exists(), "the reused set is gone under its old name"
    assert (third / WEIGHTS_FILE).stat().st_ino == inode, "the file was not rewritten in place"
    assert read_marker(third)["step"] == 3
    assert read_marker(third)["bytes"] == (third / WEIGHTS_FILE).stat().st_size
    _same(safetensors_torch.load_file(str(third / WEIGHTS_FILE)), _tensors(3.0))
    assert sorted(p.name for p in root.iterdir()) == ["step-000002", "step-000003"]


def test_a_reused_set_loses_its_marker_before_a_byte_is_rewritten(tmp_path, monkeypatch):
    """A trainer that dies while rewriting leaves a folder no reader accepts."""
    import vft.train.weight_files as weight_files

    root = tmp_path / "weights"
    first = write_set(_tensors(1.0), root, 1)

    def die(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(weight_files, "save_tensors", die)
    with pytest.raises(OSError):
        write_set(_tensors(2.0), root, 2, reuse=first)
    (leftover,) = [p for p in root.iterdir()]
    assert leftover.name == f".tmp-step-000002-{os.getpid()}"
    assert not (leftover / MARKER).exists()
    with pytest.raises(ValueError, match="incomplete"):
        read_marker(leftover)


def test_a_reuse_that_is_not_a_set_writes_a_fresh_one(tmp_path):
    root = tmp_path / "weights"
    fresh = write_set(_tensors(), root, 1, reuse=tmp_path / "nothing-here")
    _same(safetensors_torch.load_file(str(fresh / WEIGHTS_FILE)), _tensors())


def test_every_tensor_starts_aligned_to_its_element_size(tmp_path):
    """Mixed dtypes (a bool mask before float32 weights, by name) are laid out widest
    first, so no tensor needs a copy to be read."""
    tensors = {"a.mask": torch.tensor([True, False, True]), "b.w": torch.randn(3)}
    path = tmp_path / "x.safetensors"
    save_tensors(tensors, path)
    size = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + size])
    widths = {"F32": 4, "BOOL": 1}
    for name in tensors:
        entry = header[name]
        assert entry["data_offsets"][0] % widths[entry["dtype"]] == 0, name
    _same(safetensors_torch.load_file(str(path)), tensors)
