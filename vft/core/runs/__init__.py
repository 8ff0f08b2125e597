"""Run folders: `<output_dir>/<name>/attempt-N/`, their records, logs and outputs."""

from vft.core.runs.folders import (
    FINISHED,
    Attempt,
    RunFolder,
    RunStatus,
    UnreadableRecord,
    find_attempt,
    list_runs,
    run_folder,
    safe_name,
    write_json_atomic,
    write_text_atomic,
)

__all__ = [
    "FINISHED",
    "Attempt",
    "RunFolder",
    "RunStatus",
    "UnreadableRecord",
    "find_attempt",
    "list_runs",
    "run_folder",
    "safe_name",
    "write_json_atomic",
    "write_text_atomic",
]
