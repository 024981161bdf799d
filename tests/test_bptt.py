"""The BPTT trainer (mn_gym.train): learning, checkpoints and resume, truncated windows, files, bad input; the
spine it shares with the SB3 trainer (one TrainResult, the progress display).

Small and fast: batch 8, evaluation on 32 held-out episodes, a handful of iterations.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import fields, replace

import pytest
import torch

import mn_gym
from mn_gym.train import BPTTSettings, HeldOut, PPOSettings, detach_state, load_checkpoint, lr_factor, train_bptt
from mn_gym.train.common import Budget, DivergedError, Progress, TrainResult

ENV = "PointMassReach-v0"
SMALL = BPTTSettings(batch_size=8, n_hidden=16, compile_effector=False)
HELD_OUT = HeldOut.make(ENV, 32)
FAST = {"held_out": HELD_OUT, "progress": False}


def small(**settings) -> BPTTSettings:
    return replace(SMALL, **settings)


def test_loss_decreases():
    """20 iterations at a high learning rate, fixed seed: the held-out loss drops clearly (measured: to 0.57 of
    its initial value with seed 0, 0.52 with seed 1; the bound leaves a wide margin)."""
    r = train_bptt(ENV, small(eval_every=20, lr=1e-2), iterations=20, seed=0, **FAST)
    first, last = r.curve[0], r.curve[-1]
    assert r.iterations == 20 and [c["iteration"] for c in r.curve] == [0, 20]
    assert last["eval_loss"] < 0.8 * first["eval_loss"], (first, last)
    assert all(math.isfinite(c["eval_final_distance"]) for c in r.curve)


def test_checkpoint_resume_continues(tmp_path):
    r1 = train_bptt(ENV, small(eval_every=2), iterations=4, out_dir=tmp_path, **FAST)
    assert [c["iteration"] for c in r1.curve] == [0, 2, 4]
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["iteration"] == 4 and ckpt["env_id"] == ENV and len(ckpt["curve"]) == 3

    r2 = train_bptt(ENV, small(eval_every=2), iterations=6, out_dir=tmp_path, resume=True, **FAST)
    assert r2.iterations == 6
    assert [c["iteration"] for c in r2.curve] == [0, 2, 4, 6]
    key = "eval_final_distance"
    assert [c[key] for c in r2.curve[:3]] == [c[key] for c in r1.curve]  # the old curve is kept as it was
    assert r2.train_time_s > r1.train_time_s
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == [0, 2, 4, 6]


def test_resume_other_env_raises(tmp_path):
    train_bptt(ENV, small(eval_every=1), iterations=1, out_dir=tmp_path, **FAST)
    with pytest.raises(ValueError, match="made for env 'PointMassReach-v0'"):
        train_bptt("ArmReach-v0", SMALL, iterations=2, out_dir=tmp_path, resume=True, progress=False)


def test_resume_loads_weights(tmp_path):
    r1 = train_bptt(ENV, small(eval_every=2, lr=1e-2), iterations=2, out_dir=tmp_path, **FAST)
    # a resumed run with nothing left to do returns the saved policy unchanged
    r2 = train_bptt(ENV, SMALL, iterations=2, out_dir=tmp_path, resume=True, seed=99, **FAST)
    for a, b in zip(r1.policy.state_dict().values(), r2.policy.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert r2.iterations == 2 and len(r2.curve) == len(r1.curve)


def test_truncated_bptt_runs(tmp_path):
    r = train_bptt(ENV, small(eval_every=1, truncation=30), iterations=2, out_dir=tmp_path, **FAST)
    assert r.iterations == 2 and r.skipped == 0
    assert all(math.isfinite(c["train_loss"]) for c in r.curve[1:])
    assert (tmp_path / "metrics.csv").is_file()


def test_a_run_that_diverges_stops_with_a_clear_error(monkeypatch):
    """A few non-finite iterations are skipped (with a warning); DIVERGED_AFTER in a row stop the run."""
    from mn_gym.train import bptt

    calls = []

    def diverged(*args, **kwargs):
        calls.append(1)
        return math.nan, math.nan, False

    monkeypatch.setattr(bptt, "train_iteration", diverged)
    with pytest.warns(RuntimeWarning, match="update skipped"), \
            pytest.raises(DivergedError, match=f"{bptt.DIVERGED_AFTER} iterations in a row"):
        train_bptt(ENV, small(eval_every=1000), iterations=1000, **FAST)
    assert len(calls) == bptt.DIVERGED_AFTER


def test_csv_written(tmp_path):
    train_bptt(ENV, small(eval_every=1), iterations=3, out_dir=tmp_path, tensorboard=False, **FAST)
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == [0, 1, 2, 3]
    for r in rows:
        assert 0.0 <= float(r["eval_success_rate"]) <= 1.0
        assert float(r["eval_final_distance"]) > 0


def test_time_budget_and_schedule():
    r = train_bptt(ENV, small(eval_every=1000, lr_schedule="cosine", lr=1e-3, lr_final=0.1), time_budget=0.5, **FAST)
    assert r.iterations >= 1 and r.train_time_s >= 0.5
    assert r.final["lr"] == pytest.approx(1e-3 * 0.1)  # decayed to lr * lr_final at the end


def test_evaluation_is_held_out_and_repeatable():
    """The same policy scores the same on the evaluation env whatever the training seed was."""
    a = train_bptt(ENV, small(eval_every=1, lr=1e-9), iterations=1, seed=0, **FAST)
    b = train_bptt(ENV, small(eval_every=1, lr=1e-9), iterations=1, seed=1, **FAST)
    assert a.curve[0]["eval_final_distance"] != b.curve[0]["eval_final_distance"]  # different initial policies
    c = train_bptt(ENV, small(eval_every=1, lr=1e-9), iterations=1, seed=0, **FAST)
    keys = ("eval_final_distance", "eval_success_rate", "eval_loss")
    assert [c.curve[0][k] for k in keys] == [a.curve[0][k] for k in keys]


@pytest.mark.parametrize("settings, kwargs, match", [
    ({}, {}, "give a budget"),
    ({}, {"iterations": 0}, "iterations must be a positive int"),
    ({}, {"time_budget": -1.0}, "time_budget must be a positive"),
    ({"batch_size": 0}, {"iterations": 2}, "batch_size"),
    ({"lr_schedule": "linear"}, {"iterations": 2}, "lr_schedule"),
    ({"truncation": 1000}, {"iterations": 2}, "exceeds the episode length"),
    ({}, {"iterations": 2, "env_kwargs": {"batch_size": 3}}, "must not set 'batch_size'"),
    ({}, {"iterations": 2, "resume": True}, "needs out_dir"),
])
def test_bad_input(settings, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_bptt(ENV, small(**settings), progress=False, **kwargs)


def test_unknown_env():
    with pytest.raises(ValueError, match="unknown env id"):
        train_bptt("NoSuchEnv-v0", SMALL, iterations=1, progress=False)


def test_detach_state_and_lr_factor():
    env = mn_gym.make(ENV, batch_size=2, seed=0)
    state, _ = env.reset()
    x = torch.ones(2, 4, requires_grad=True)
    state = state._replace(last_action=x * 2)
    d = detach_state({"s": state, "h": [x, None]})
    assert type(d["s"]) is type(state) and type(d["s"].effector) is type(state.effector)
    assert not d["s"].last_action.requires_grad and not d["h"][0].requires_grad and d["h"][1] is None
    assert lr_factor("cosine", 0.0, 0.1) == 1.0 and lr_factor("cosine", 1.0, 0.1) == pytest.approx(0.1)
    assert lr_factor("exponential", 0.5, 0.01) == pytest.approx(0.1) and lr_factor("constant", 0.7, 0.1) == 1.0


def test_one_train_result_for_both_trainers(tmp_path):
    from mn_gym.train.sb3 import train_sb3

    bptt = train_bptt(ENV, small(eval_every=1), iterations=2, out_dir=tmp_path / "bptt", **FAST)
    ppo = train_sb3(ENV, PPOSettings(n_envs=4, n_steps=16, batch_size=32), steps=128, n_evals=2,
                    out_dir=tmp_path / "ppo", **FAST)
    for r, algo in ((bptt, "bptt"), (ppo, "ppo")):
        assert type(r) is TrainResult and r.final is r.curve[-1] and r.out_dir is not None
        assert r.env_steps == int(r.final["env_steps"]) > 0 and r.train_time_s > 0
        assert r.config["algo"] == algo and r.config["eval_batch"] == 32 and r.config["env_id"] == ENV
        assert 0.0 <= r.final["eval_success_rate"] <= 1.0 and r.final["eval_final_distance"] > 0
        assert (r.out_dir / "metrics.csv").is_file()
    assert (bptt.iterations, bptt.env_steps, ppo.iterations, ppo.skipped) == (2, 2 * 8 * 100, None, 0)
    assert {f.name for f in fields(TrainResult)} >= {"policy", "curve", "env_steps", "train_time_s", "config"}
    assert ppo.config["n_envs"] == 4 and bptt.config["batch_size"] == 8


class LogFile(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_progress_in_a_log_file_is_a_few_plain_lines(capsys):
    """Not a terminal: one plain line per tenth of the budget and none between, whatever the update rate."""
    log = LogFile()
    bar = Progress("ArmReach-v0", Budget(5000, None, "iterations", "it"), stream=log)
    for i in range(1, 5001):
        bar.update(i, 0.0, loss=0.5)
    bar.close()
    lines = log.getvalue().splitlines()  # splitlines also splits at carriage returns (tqdm's redraws)
    assert len(lines) == 10 and "\r" not in log.getvalue()
    assert lines[-1].startswith("ArmReach-v0: 100%") and "5000/5000" in lines[-1] and "loss=0.5000" in lines[-1]

    log = LogFile()  # a time budget counts seconds; a resumed run starts at its fraction, without a burst of lines
    bar = Progress("ArmReach-v0", Budget(None, 60.0, "iterations", "it"), 0, 30.0, stream=log)
    for t in range(300, 451):
        bar.update(0, t / 10)
    bar.close()
    lines = log.getvalue().splitlines()  # at 60 %, 70 % and the end
    assert [line.split("|")[0] for line in lines] == ["ArmReach-v0:  60%", "ArmReach-v0:  70%", "ArmReach-v0:  75%"]
    assert "45/60 s" in lines[-1]

    train_bptt(ENV, small(eval_every=5), iterations=10, held_out=HELD_OUT)  # progress on (captured: not a TTY)
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 10 and all(line.startswith(f"{ENV}: ") for line in err.splitlines())


def test_compiled_step_trains_like_the_eager_one():
    """compile_step=True (policy and env step fused under torch.compile): the same first loss as eager from the
    same seed, and an update that changes the policy."""
    results = []
    for compile_step in (False, True):
        torch.manual_seed(0)
        r = train_bptt(ENV, small(eval_every=2, compile_step=compile_step), iterations=2, seed=0, **FAST)
        results.append(r)
    eager, compiled = results
    assert math.isfinite(compiled.curve[-1]["eval_loss"])
    assert compiled.curve[-1]["train_loss"] == pytest.approx(eager.curve[-1]["train_loss"], rel=1e-3)
