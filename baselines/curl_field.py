"""Curl-field adaptation with BPTT: null-field training, field exposure, adaptation, catch-trial after-effects,
and force-channel probes that show the controller's lateral force growing as it adapts.

Protocol (ArmCurlFieldChannel-v0: arm26, 8 centre-out targets 10 cm from the centre, 20 % of training trials
force-channel probes; go cue at 0.2 s when evaluated):
  1. train a GRU controller in the null field (k = 0) for --minutes;
  2. test it in the null field (straight reaches) and in the curl field F = k [-vy, vx] (k = --k N s/m):
     the field pushes the hand sideways, so reaches curve;
  3. keep training in the field for --minutes: reaches straighten again; every --probe-every s of training
     (and before the first field trial), probe the controller on force-channel trials to the 8 targets: the
     channel holds the hand on the straight line and measures the lateral force the controller makes, which
     grows toward the field's push k |v| (Scheidt et al. 2000; Smith, Ghazizadeh & Shadmehr 2006). The
     adaptation index is the regression slope of that force on k |v| (0 none, 1 full compensation);
  4. test the adapted controller on catch trials (field off): after-effects curve the other way.
Curvature = the signed perpendicular deviation of the hand from the straight centre-target line when the hand is
first half-way out (5 cm from the centre) (cm; positive = counter-clockwise of the line, the way this field
pushes), averaged over the 8 directions: the initial deviation that after-effects show as a mirror image. The
deviation at peak hand speed and the signed peak deviation over the whole trial are reported too. Writes a
figure of the paths, one of the channel-force profiles and adaptation index (`curl_field_channel.png`) and a
JSON summary (with the hand paths and force profiles).

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
from mn_gym.analysis import adaptation_index, channel_force, hand_speed
from mn_gym.analysis.figures import channel_force_plot

ENV_ID = "ArmCurlFieldChannel-v0"
CUE_S = 0.2  # go cue of the test and probe trials (s)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=4.0, help="training time per phase")
    p.add_argument("--k", type=float, default=15.0, help="curl field gain (N s/m)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--probe-every", type=float, default=5.0, help="training seconds between channel probes")
    p.add_argument("--out", type=Path, default=Path("baselines/results/curl_field"))
    return p.parse_args()


def train(policy: torch.nn.Module, k: float, minutes: float, args: argparse.Namespace, log: list,
          probes: list | None = None) -> None:
    """Adam on the env's own loss (reward = -loss) for a training-time budget; with `probes`, a channel probe
    (`probe`) before the first iteration and every --probe-every training seconds, appended to it (probe time
    is not training time)."""
    env = mn_gym.make(ENV_ID, batch_size=args.batch, k=k, seed=args.seed + len(log))
    opt = torch.optim.Adam(policy.parameters(), lr=args.lr)
    trained, it, next_probe = 0.0, 0, 0.0
    while trained < 60 * minutes:
        if probes is not None and trained >= next_probe:
            probes.append({"training_s": trained, **probe(policy, k)})
            print(f"probe at {trained:5.0f} s of field training: adaptation index "
                  f"{probes[-1]['adaptation_index']:+.2f}", flush=True)
            next_probe += args.probe_every
        start = time.perf_counter()
        ro = mn_gym.rollout(env, policy)
        loss = -ro.rewards.mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        trained += time.perf_counter() - start
        it += 1
        if it % 50 == 0:
            log.append({"k": k, "iteration": it, "seconds": trained, "loss": float(loss),
                        "final_distance_cm": 100 * float(ro.terms["position"][-1].mean())})
            print(log[-1], flush=True)
    if probes is not None:
        probes.append({"training_s": trained, **probe(policy, k)})


def _reaches(policy: torch.nn.Module, k: float, channel: bool) -> tuple[mn_gym.Env, mn_gym.Rollout]:
    """One deterministic reach to each of the 8 targets (cue at CUE_S), all channel trials or none."""
    env = mn_gym.make(ENV_ID, batch_size=8, k=k, deterministic=True, cue_min=CUE_S, cue_max=CUE_S,
                      channel_probability=1.0 if channel else 0.0)
    return env, mn_gym.rollout(env, policy, seed=0, options={"target_index": torch.arange(8)})


@torch.no_grad()
def probe(policy: torch.nn.Module, k: float) -> dict:
    """Force-channel trials to the 8 targets: the channel's force along the line's normal (N), mean over the
    directions per step, the ideal compensation k |v| likewise, and the adaptation index."""
    env, ro = _reaches(policy, k, channel=True)
    force, ideal = channel_force(env, ro), k * hand_speed(ro)
    return {"adaptation_index": adaptation_index(force, ideal), "force_N": force.mean(1).tolist(),
            "ideal_N": ideal.mean(1).tolist(), "peak_force_N": float(force.mean(1).max())}


@torch.no_grad()
def test(policy: torch.nn.Module, k: float) -> dict:
    """Hand paths to the 8 targets (deterministic, cue at 0.2 s, no channel) and their signed deviations (cm)."""
    _, ro = _reaches(policy, k, channel=False)
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
    probes: list = []
    train(policy, 0.0, args.minutes, args, log)
    results = {"null-trained, null field": test(policy, 0.0), "null-trained, curl field": test(policy, args.k)}
    train(policy, args.k, args.minutes, args, log, probes)
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
    plot_probes(probes, args)
    summary = results
    (args.out / "curl_field.json").write_text(json.dumps({"args": {**vars(args), "out": str(args.out)},
                                                         "results": summary, "probes": probes,
                                                         "training_log": log}, indent=1))
    for p in probes:
        print(f"channel probe after {p['training_s']:5.0f} s in the field: adaptation index "
              f"{p['adaptation_index']:+.2f}, peak mean lateral force {p['peak_force_N']:+.2f} N")
    for name, r in summary.items():
        print(f"{name:28s} initial deviation {r['mean_initial_deviation_cm']:+6.2f} cm, at peak speed "
              f"{r['mean_deviation_at_peak_speed_cm']:+6.2f} cm, signed peak "
              f"{r['mean_signed_peak_deviation_cm']:+6.2f} cm, final distance {r['mean_final_distance_cm']:5.2f} cm")



def plot_probes(probes: list, args: argparse.Namespace) -> None:
    """The channel-force profiles of the probes (`curl_field_channel_force.png`, via mn_gym.analysis) and
    profiles + adaptation index side by side (`curl_field_channel.png`)."""
    dt = mn_gym.make(ENV_ID).dt
    chosen = [probes[i] for i in sorted({round(j * (len(probes) - 1) / 5) for j in range(6)})]  # <= 6, the last
    channel_force_plot({f"after {p['training_s']:.0f} s": torch.tensor(p["force_N"]) for p in chosen},
                       torch.tensor(probes[-1]["ideal_N"]), dt, args.out / "curl_field_channel_force.png",
                       f"force-channel probes, curl field k = {args.k} N s/m")
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = plt.cm.viridis(torch.linspace(0, 1, len(probes)).tolist())
    for p, c in zip(probes, colours, strict=True):
        t = [dt * i - CUE_S for i in range(len(p["force_N"]))]
        ax.plot(t, p["force_N"], color=c, lw=1.2)
    ax.plot(t, probes[-1]["ideal_N"], "k--", lw=1.2, label="k |v| (full compensation)")
    ax.set_xlabel("time from the go cue (s)")
    ax.set_ylabel("lateral force on the channel (N)")
    ax.set_title("channel force, mean over 8 directions\n(dark: first probe, yellow: last)", fontsize=10)
    ax.legend(fontsize=8)
    bx.plot([p["training_s"] for p in probes], [p["adaptation_index"] for p in probes], "o-")
    bx.set_xlabel("training in the field (s)")
    bx.set_ylabel("adaptation index")
    bx.set_title("regression of channel force on k |v|", fontsize=10)
    fig.suptitle(f"curl-field adaptation with force-channel probes (k = {args.k} N s/m, BPTT)")
    fig.tight_layout()
    fig.savefig(args.out / "curl_field_channel.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
