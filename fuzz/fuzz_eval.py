"""atheris entry point for the `eval` target (see targets.py). Run via fuzz/run.py, or
directly: python fuzz/fuzz_eval.py -runs=10000 CORPUS_DIR..."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["warden"]):
    import warden.compile
    import warden.engine
    import warden.load
    import warden.paths
    import warden.runtime
    import warden.validate

    with contextlib.suppress(ImportError):  # hooks may not be in this build
        import warden.hooks  # noqa: F401
    import targets


def main() -> None:
    atheris.Setup(sys.argv, targets.TARGETS["eval"])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
