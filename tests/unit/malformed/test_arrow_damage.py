"""Damaged Arrow IPC files never crash the process: Arrow trusts a file's offsets, so a reader that does not validate
them reads outside its buffers (CI once died of a bus error in the property test). Thousands of seeded damages are read
in a child process, so that a crash fails this test instead of killing the test run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent("""
    import random, sys
    from pathlib import Path
    from tests.unit.malformed.cases import WRITERS, alpaca_rows, sharegpt_rows
    from tunelab.data.errors import DataError
    from tunelab.data.read import read_rows

    path = Path(sys.argv[1])
    WRITERS["arrow"](sharegpt_rows() + alpaca_rows(), path)
    good = path.read_bytes()
    rng = random.Random(20261205)
    read = failed = 0
    for _ in range(2000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.5:
            data = data[: max(1, int(rng.random() * len(data)))]
        path.write_bytes(bytes(data))
        try:
            read_rows(path, "demo")
            read += 1
        except DataError as exc:
            assert exc.file == str(path), exc
            failed += 1
    print(read, failed)
""")


def test_damaged_arrow_files_fail_cleanly(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "demo.arrow")], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-3000:]}"
    read, failed = map(int, done.stdout.split())
    assert read + failed == 2000 and failed > 0
