"""The thread default of `import mn_gym` (mn_gym.threads)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mn_gym.threads import default_threads


@pytest.mark.parametrize("environ,expected", [
    ({}, 1), ({"MN_GYM_THREADS": "3"}, 3), ({"MN_GYM_THREADS": "keep"}, None), ({"OMP_NUM_THREADS": "4"}, None),
    ({"MKL_NUM_THREADS": "2"}, None), ({"OMP_NUM_THREADS": "4", "MN_GYM_THREADS": "2"}, 2),
])
def test_default_threads(environ, expected):
    assert default_threads(environ) == expected


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_thread_setting_is_named(value):
    with pytest.raises(ValueError, match="MN_GYM_THREADS must be a positive integer or 'keep'"):
        default_threads({"MN_GYM_THREADS": value})


def test_import_sets_one_thread_and_the_user_can_keep_theirs():
    code = "import torch; torch.set_num_threads(2); import mn_gym; print(torch.get_num_threads())"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MN_GYM_THREADS")}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "1"
    env["MN_GYM_THREADS"] = "keep"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "2"
