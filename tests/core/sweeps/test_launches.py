"""A sweep run again under its name is a new launch: the record keeps every launch, `NAME`
reads the latest and `NAME/launch-N` an earlier one; a record an older vft wrote (one
launch, no number) still reads, and two launches at once never drop each other's record."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from vft.core.errors import UserError
from vft.core.sweeps.record import (
    PointRecord,
    SweepRecord,
    new_launch,
    read_launches,
    read_sweep,
    sweep_attempt_refs,
    sweep_path,
)


def _record(attempt: int | None, seeds: tuple[int, ...] = (1, 2)) -> SweepRecord:
    return SweepRecord(
        name="smoke",
        recipe="/r/smoke.toml",
        backend="local",
        axes=[{"key": "trainer.seed", "values": list(seeds)}],
        overrides=[],
        max_parallel=1,
        points=[PointRecord(f"smoke-seed{s}", {"trainer.seed": s}, attempt=attempt) for s in seeds],
    )


def test_a_second_launch_keeps_the_first(tmp_path):
    first = _record(1)
    assert new_launch(first, tmp_path) == [] and first.launch == 1
    first.status = "succeeded"
    first.write(tmp_path)  # as the runner writes it, point by point
    second = _record(2, seeds=(1, 2, 3))  # the same points again (attempt-2), and one more
    assert new_launch(second, tmp_path) == [first] and second.launch == 2
    second.write(tmp_path)

    assert read_sweep("smoke", tmp_path) == second
    assert read_sweep("smoke/launch-1", tmp_path) == first
    assert read_launches("smoke", tmp_path) == [first, second]
    assert sweep_attempt_refs("smoke/launch-1", tmp_path) == [
        "smoke-seed1/attempt-1",
        "smoke-seed2/attempt-1",
    ]
    assert sweep_attempt_refs("smoke", tmp_path)[-1] == "smoke-seed3/attempt-2"
    # the file's top level is the latest launch, as a reader of one launch expects
    stored = json.loads(sweep_path(tmp_path, "smoke").read_text())
    assert stored["launch"] == 2 and len(stored["points"]) == 3
    assert [e["launch"] for e in stored["earlier"]] == [1]
    assert stored["earlier"][0]["status"] == "succeeded"

    with pytest.raises(UserError) as exc:
        read_sweep("smoke/launch-3", tmp_path)
    assert exc.value.line() == (
        "sweep 'smoke' has no launch-3 (launches: smoke/launch-1, smoke/launch-2)"
    )


def test_a_record_an_older_vft_wrote_is_launch_1_and_is_kept(tmp_path):
    old = {  # the whole file as the previous version wrote it: no launch number
        "name": "smoke",
        "recipe": "/r/smoke.toml",
        "backend": "local",
        "axes": [{"key": "trainer.seed", "values": [1]}],
        "overrides": ["trainer.max_steps=1"],
        "max_parallel": 1,
        "points": [
            {
                "name": "smoke-seed1",
                "values": {"trainer.seed": 1},
                "attempt": 1,
                "status": "succeeded",
                "exit_code": 0,
                "note": None,
            }
        ],
        "status": "succeeded",
        "created_at": 1.0,
        "ended_at": 2.0,
    }
    sweep_path(tmp_path, "smoke").write_text(json.dumps(old))
    assert read_sweep("smoke/launch-1", tmp_path).to_dict() == {**old, "launch": 1}
    again = _record(2, seeds=(1,))
    new_launch(again, tmp_path)
    assert again.launch == 2
    assert read_sweep("smoke/launch-1", tmp_path).to_dict() == {**old, "launch": 1}
    assert read_sweep("smoke", tmp_path) == again


def test_an_unreadable_record_refuses_a_new_launch_and_is_left_alone(tmp_path):
    path = sweep_path(tmp_path, "smoke")
    path.write_text('{"name": "smoke", "poin')
    with pytest.raises(UserError) as exc:
        new_launch(_record(None), tmp_path)
    assert exc.value.line().startswith(f"sweep 'smoke': {path} is unreadable (")
    assert exc.value.line().endswith("move it aside or give the sweep another --name")
    assert path.read_text() == '{"name": "smoke", "poin'


def test_a_record_broken_mid_sweep_is_kept_aside_and_the_sweep_goes_on(tmp_path):
    record = _record(1)
    new_launch(record, tmp_path)
    path = sweep_path(tmp_path, "smoke")
    path.write_text("not json")
    record.status = "succeeded"
    record.write(tmp_path)
    assert path.with_name("smoke.sweep.json.unreadable").read_text() == "not json"
    assert read_sweep("smoke", tmp_path).status == "succeeded"


#: a launch as `vft sweep` makes one: number it, then rewrite it at every point's change
LAUNCHER = textwrap.dedent(
    """
    import sys
    from vft.core.sweeps.record import PointRecord, SweepRecord, new_launch

    out, tag = sys.argv[1], sys.argv[2]
    record = SweepRecord("smoke", "r.toml", "local", [], [], 1, [PointRecord(tag, {})])
    new_launch(record, out)
    for i in range(40):
        record.points[0].status = f"step {i}"
        record.write(out)
    """
)


def test_launches_at_the_same_time_all_stay_in_the_record(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path), f"p{i}"]) for i in range(4)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0] * 4
    launches = read_launches("smoke", tmp_path)
    assert [r.launch for r in launches] == [1, 2, 3, 4]
    assert sorted(r.points[0].name for r in launches) == ["p0", "p1", "p2", "p3"]
    assert {r.points[0].status for r in launches} == {"step 39"}
