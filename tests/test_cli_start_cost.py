"""The evallib command does not pay for jsonschema's IRI grammars (rfc3987_syntax compiles 38 of them on import,
about 1.2 s before a batch's workers fork), and notebooks still validate without them."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
from evallib.pipeline.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
import nbformat
nbformat.validate(nbformat.v4.new_notebook())
print(repr(sys.modules.get("rfc3987_syntax", "absent")))
"""


def test_the_command_skips_the_iri_grammars_and_notebooks_still_validate() -> None:
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "None"
