"""Torch CPU threads: one by default, because mn_gym's batches are small.

At BPTT and RL batch sizes (a few to a few thousand effectors) a step is hundreds of small tensor ops; torch's
intra-op threads barely speed them up, and when the other cores are busy (a second job, a sweep) every
parallel op waits for a descheduled thread: the README's BPTT loop took 0.12 s an iteration at 1 thread and
0.86 s at 2 with one other busy process on a 2-core CPU (1.0 and 7.1 minutes for 500 iterations). So
`import mn_gym` sets `torch.set_num_threads(1)` unless the user has chosen:

- `MN_GYM_THREADS=N` sets N threads; `MN_GYM_THREADS=keep` leaves torch's setting alone;
- an `OMP_NUM_THREADS` or `MKL_NUM_THREADS` in the environment is the user's choice: kept;
- `torch.set_num_threads(N)` after `import mn_gym` overrides it (for batches of tens of thousands on many cores).
"""

from __future__ import annotations

import os

import torch

VARIABLE = "MN_GYM_THREADS"


def default_threads(environ: dict[str, str] | None = None) -> int | None:
    """The thread count `import mn_gym` sets, or None to leave torch's own setting (see the module doc)."""
    env = os.environ if environ is None else environ
    value = env.get(VARIABLE, "").strip()
    if not value:
        return None if env.get("OMP_NUM_THREADS") or env.get("MKL_NUM_THREADS") else 1
    if value.lower() == "keep":
        return None
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise ValueError(f"{VARIABLE} must be a positive integer or 'keep', got {value!r}")


def apply_default_threads() -> None:
    """Set torch's intra-op threads to `default_threads()` (when it is not None)."""
    n = default_threads()
    if n is not None:
        torch.set_num_threads(n)
