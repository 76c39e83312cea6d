"""The notebook as far as it got, saved before each of its code cells, for a site whose process dies in a cell.

A batch's worker that dies, or is killed at the time limit, leaves this file in the site's staging folder;
:func:`evallib.pipeline.execute.salvage_failure` keeps it as the site's ``failed.ipynb``.
"""

from __future__ import annotations

import json
import os
from typing import Any


class QuickSave:
    """The notebook saved before each code cell, read only if the process dies in that cell.

    Compact JSON from the C encoder, without the schema validation and deep copy of papermill's save (its pretty,
    validated save writes the end). Only the cells that can have changed since the last save are encoded again
    (those from the cell run then to the cell about to run: the cells before had finished, and the cells after have
    not started), and the file is rewritten in place through one descriptor: encoding the whole notebook and
    truncating the file at every cell cost about 10 ms a site.
    """

    def __init__(self, nb: Any, path: str | None) -> None:
        self.nb, self.path = nb, path
        self.fd: int | None = None
        self.encoded: list[str] = []
        self.since = 0

    def __call__(self, index: int) -> None:
        """Save the notebook as it is now, cell ``index`` about to run (the cells before it already run)."""
        if not self.path:
            return
        cells = self.nb.cells
        if not self.encoded:
            self.encoded = [json.dumps(c, ensure_ascii=False) for c in cells]
        for i in range(self.since, index + 1):
            self.encoded[i] = json.dumps(cells[i], ensure_ascii=False)
        self.since = index
        rest = json.dumps({k: v for k, v in self.nb.items() if k != "cells"}, ensure_ascii=False)
        # The notebook's JSON, json.dumps's own text when "cells" is its first key: {"cells": [...], "metadata": ...}
        after = f", {rest[1:]}" if rest != "{}" else "}"
        data = f'{{"cells": [{", ".join(self.encoded)}]{after}'.encode()
        if self.fd is None:
            # papermill has just written the notebook here, in this process's own staging folder.
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        os.pwrite(self.fd, data, 0)
        os.ftruncate(self.fd, len(data))

    def close(self) -> None:
        """Let go of the file (papermill's own save writes the finished notebook)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
