"""Writes that a kill cannot leave half done: to a temporary name beside the file, then
`os.replace`, so a reader (or a resumed run) sees the old file or the new one, never a part."""

from __future__ import annotations

import contextlib
import json
import os


@contextlib.contextmanager
def replacing(path: str, mode: str = "w"):
    """`with replacing(path) as handle:` writes `path` whole or not at all."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_json(path: str, data) -> None:
    with replacing(path) as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
