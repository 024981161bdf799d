"""Every Python block of README.md runs as written, each in a fresh interpreter (registrations stay apart).

To keep the suite within its budget two training lengths are cut: the BPTT loop's `range(500)` to 3 iterations
and PPO's `learn(200_000)` to one rollout. Shell blocks are the CLI, exercised in tests/test_cli.py.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
SHORTER = {"range(500)": "range(3)", ".learn(200_000)": ".learn(4096)"}


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, tmp_path):
    code = BLOCKS[index]
    for long, short in SHORTER.items():
        code = code.replace(long, short)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env=env)  # this checkout's mn_gym, whatever is installed
    assert out.returncode == 0, f"README block {index} failed:\n{BLOCKS[index]}\n{out.stderr[-3000:]}"
