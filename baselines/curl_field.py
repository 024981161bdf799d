"""Curl-field adaptation with BPTT: null-field training, field exposure, adaptation, catch-trial after-effects.

Protocol (ArmCurlField-v0, arm26, 8 centre-out targets 10 cm from the centre, go cue at 0.2 s when evaluated):
  1. train a GRU controller in the null field (k = 0) for --minutes;
  2. test it in the null field (straight reaches) and in the curl field F = k [-vy, vx] (k = --k N s/m):
     the field pushes the hand sideways, so reaches curve;
  3. keep training in the field for --minutes: reaches straighten again;
  4. test the adapted controller on catch trials (field off): after-effects curve the other way.
Curvature = the signed perpendicular deviation of the hand from the straight centre-target line when the hand is
first half-way out (5 cm from the centre) (cm; positive = counter-clockwise of the line, the way this field
pushes), averaged over the 8 directions: the initial deviation that after-effects show as a mirror image. The
deviation at peak hand speed and the signed peak deviation over the whole trial are reported too. Writes a
figure and a JSON summary (with the hand paths).

Reproduce (about 2 x --minutes plus evaluation, 1 thread):
    python baselines/curl_field.py --minutes 4 --out baselines/results/curl_field
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

import mn_gym

ENV_ID = "ArmCurlField-v0"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=4.0, help="training time per phase")
    p.add_argument("--k", type=float, default=15.0, help="curl field gain (N s/m)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("baselines/results/curl_field"))
    return p.parse_args()


def train(policy: torch.nn.Module, k: float, minutes: float, args: argparse.Namespace, log: list) -> None:
    """Adam on the env's own loss (reward = -loss) for a wall-clock budget."""
    env = mn_gym.make(ENV_ID, batch_size=args.batch, k=k, seed=args.seed + len(log))
    opt = torch.optim.Adam(policy.parameters(), lr=args.lr)
    start, it = time.perf_counter(), 0
    while time.perf_counter() - start < 60 * minutes:
        ro = mn_gym.rollout(env, policy)
        loss = -ro.rewards.mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        it += 1
        if it % 50 == 0:
            log.append({"k": k, "iteration": it, "seconds": time.perf_counter() - start, "loss": float(loss),
                        "final_distance_cm": 100 * float(ro.terms["position"][-1].mean())})
            print(log[-1], flush=True)


@torch.no_grad()
def test(policy: torch.nn.Module, k: float) -> dict:
    """Hand paths to the 8 targets (deterministic, cue at 0.2 s) and their signed deviations (cm)."""
    env = mn_gym.make(ENV_ID, batch_size=8, k=k, deterministic=True, cue_min=0.2, cue_max=0.2)
    ro = mn_gym.rollout(env, policy, seed=0, options={"target_index": torch.arange(8)})
    hand = ro.hand[:, :, :2]  # (T + 1, 8, 2)
    centre, target = ro.final_state.task.origin, ro.final_state.task.target
    axis = (target - centre) / torch.linalg.vector_norm(target - centre, dim=-1, keepdim=True)
    rel = hand - centre
    perp = rel[..., 0] * -axis[:, 1] + rel[..., 1] * axis[:, 0]  # (T + 1, 8), counter-clockwise positive
    peak = perp.gather(0, perp.abs().argmax(0, keepdim=True))[0]
    speed = torch.linalg.vector_norm(ro.hand[:, :, 2:], dim=-1)  # (T + 1, 8)
    at_peak_speed = perp.gather(0, speed.argmax(0, keepdim=True))[0]
    radial = torch.linalg.vector_norm(rel, dim=-1)  # (T + 1, 8)
    halfway = 0.5 * torch.linalg.vector_norm(target - centre, dim=-1)
    out = radial >= halfway
    first = torch.where(out.any(0), out.float().argmax(0), radial.argmax(0))  # first step half-way out
    initial = perp.gather(0, first[None])[0]
    final = torch.linalg.vector_norm(hand[-1] - target, dim=-1)
    return {"paths": hand.permute(1, 0, 2).tolist(), "centre": centre[0].tolist(), "targets": target.tolist(),
            "initial_deviation_cm": (100 * initial).tolist(),
            "mean_initial_deviation_cm": float(100 * initial.mean()),
            "deviation_at_peak_speed_cm": (100 * at_peak_speed).tolist(),
            "mean_deviation_at_peak_speed_cm": float(100 * at_peak_speed.mean()),
            "peak_deviation_cm": (100 * peak).tolist(), "mean_signed_peak_deviation_cm": float(100 * peak.mean()),
            "mean_final_distance_cm": float(100 * final.mean())}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    env = mn_gym.make(ENV_ID)
    policy = mn_gym.GRUPolicy(env.obs_size, env.action_size, n_hidden=args.hidden)
    log: list = []
    train(policy, 0.0, args.minutes, args, log)
    results = {"null-trained, null field": test(policy, 0.0), "null-trained, curl field": test(policy, args.k)}
    train(policy, args.k, args.minutes, args, log)
    results["field-trained, curl field"] = test(policy, args.k)
    results["field-trained, catch trial"] = test(policy, 0.0)

    args.out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4), sharex=True, sharey=True)
    for ax, (name, r) in zip(axes, results.items(), strict=True):
        for path, tgt in zip(r["paths"], r["targets"], strict=True):
            xs, ys = zip(*path, strict=True)
            ax.plot(xs, ys, lw=1.5)
            ax.add_patch(plt.Circle(tgt, 0.01, fill=False, color="grey"))
        ax.plot(*r["centre"], "k+")
        ax.set_title(f"{name}\ninitial deviation {r['mean_initial_deviation_cm']:+.1f} cm (+ = the field's way)",
                     fontsize=10)
        ax.set_aspect("equal")
        ax.set_xlabel("x (m)")
    axes[0].set_ylabel("y (m)")
    fig.suptitle(f"arm26 centre-out reaching, curl field k = {args.k} N s/m, {args.minutes} min BPTT per phase")
    fig.tight_layout()
    fig.savefig(args.out / "curl_field.png", dpi=120)
    summary = results
    (args.out / "curl_field.json").write_text(json.dumps({"args": {**vars(args), "out": str(args.out)},
                                                         "results": summary, "training_log": log}, indent=1))
    for name, r in summary.items():
        print(f"{name:28s} initial deviation {r['mean_initial_deviation_cm']:+6.2f} cm, at peak speed "
              f"{r['mean_deviation_at_peak_speed_cm']:+6.2f} cm, signed peak "
              f"{r['mean_signed_peak_deviation_cm']:+6.2f} cm, final distance {r['mean_final_distance_cm']:5.2f} cm")


if __name__ == "__main__":
    main()
