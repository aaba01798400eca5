"""Read an offline W&B run (``runs/wandb/offline-run-*/run-<id>.wandb``) without network.

The ``.wandb`` file is a LevelDB-style log: a 7-byte file header (``:W&B``, magic,
version) then 32 KiB blocks of records, each with a 7-byte header (crc32, length, type:
1 full, 2 first, 3 middle, 4 last) holding serialized ``wandb_internal_pb2.Record``
protobufs. We read history, summary and config records: enough to check what a run
logged (tests) or to inspect a run before ``wandb sync``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7
FILE_HEADER = 7


def _records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file (header {data[:4]!r})")
    out, pending, pos = [], b"", FILE_HEADER
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:  # block trailer padding
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if kind == 0 and length == 0:
            pos += room  # zero padding until the block end
            continue
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            out.append(pending + chunk)
            pending = b""
    return out


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def read_offline_run(run_dir: str | Path) -> dict[str, Any]:
    """``{"id", "history": [step dicts], "summary": {...}, "config": {...}}`` of one run."""
    from wandb.proto import wandb_internal_pb2 as pb

    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    history, summary, config = [], {}, {}
    for raw in _records(files[0]):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            summary.update({_key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "config":
            config.update({_key(i): json.loads(i.value_json) for i in rec.config.update})
    return {"id": files[0].stem.removeprefix("run-"), "history": history,
            "summary": summary, "config": config}
