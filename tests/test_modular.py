"""ModularGRUPolicy (mn_gym.modular): shapes, input/output masks, Dale's law, inter-area delays, hidden noise,
config round trip, rollouts and BPTT (checkpoint, reload, truncated windows); BPTT's activity regularisation."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict

import pytest
import torch
from torch import nn

import mn_gym
from mn_gym import ModularGRUPolicy
from mn_gym.files import BadFileError
from mn_gym.train import BPTTSettings, HeldOut, bptt, load_checkpoint, train_bptt
from mn_gym.train.runs import load_policy

ENV = "ArmReach-v0"
N_OBS, N_MUS = 16, 6  # ArmReach-v0's sizes


def steps(policy: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """The hidden states (T, B, n_hidden) of `policy` over observations (T, B, n_obs), from the initial state."""
    hidden, out = None, []
    for o in obs:
        _, hidden = policy(o, hidden)
        out.append(hidden)
    return torch.stack(out)


@pytest.mark.parametrize("kwargs", [
    {},
    {"areas": (8,)},
    {"areas": (8, 4, 6), "input_areas": (0, 1), "output_areas": (1, 2), "delay_steps": 3},
    {"areas": (5, 7), "dale": True, "excitatory_fraction": 0.5, "hidden_noise": 0.1,
     "connections": [[False, True], [False, False]]},
])
def test_shapes(kwargs):
    torch.manual_seed(0)
    p = ModularGRUPolicy(N_OBS, N_MUS, **kwargs)
    areas = kwargs.get("areas", (32, 32))
    assert p.n_hidden == sum(areas) * (kwargs.get("delay_steps", 0) + 1)
    assert p.initial_hidden(3).shape == (3, p.n_hidden)
    action, hidden = p(torch.randn(3, N_OBS))
    assert action.shape == (3, N_MUS) and hidden.shape == (3, p.n_hidden)
    assert ((action > 0) & (action < 1)).all()
    assert [s.stop - s.start for s in p.area_slices()] == list(areas)
    assert p.area_slices()[-1].stop == p.current_state(hidden).shape[-1] == sum(areas)
    with pytest.raises(ValueError, match="obs must have shape"):
        p(torch.randn(3, N_OBS + 1))
    with pytest.raises(ValueError, match="hidden must have shape"):
        p(torch.randn(3, N_OBS), torch.zeros(3, p.n_hidden + 1))


def test_one_area_is_a_gru_cell():
    """One area, no delay: the equations of torch.nn.GRUCell, to rounding."""
    torch.manual_seed(0)
    p = ModularGRUPolicy(N_OBS, N_MUS, (8,))
    cell = nn.GRUCell(N_OBS, 8)
    with torch.no_grad():
        cell.weight_ih.copy_(p.core.weight_obs)
        cell.weight_hh.copy_(p.core.weight_rec)
        cell.bias_ih.copy_(p.core.bias_ih)
        cell.bias_hh.copy_(p.core.bias_hh.add(0.1))
        p.core.bias_hh.add_(0.1)
    obs, h = torch.randn(4, N_OBS), torch.randn(4, 8).tanh()
    _, hidden = p(obs, h)
    torch.testing.assert_close(hidden, cell(obs, h))


def test_sequence_forward_is_the_steps():
    """ModularGRU's nn.GRU-shaped call over (T, B, n_in) gives the output areas' states of stepping one by one."""
    torch.manual_seed(0)
    core = mn_gym.ModularGRU(N_OBS, (5, 4, 3), output_areas=(0, 2), delay_steps=2, dale=True)
    x, h0 = torch.randn(7, 3, N_OBS), torch.randn(1, 3, core.n_hidden)
    out, last = core(x, h0)
    h, expected = h0[0], []
    for x_t in x:
        h = core.step(x_t, h)
        expected.append(h[:, [*range(5), *range(9, 12)]])
    torch.testing.assert_close(out, torch.stack(expected))
    torch.testing.assert_close(last[0], h)
    assert core.n_out == 8 and out.shape == (7, 3, 8)


def test_bad_arguments_raise():
    for kwargs, match in [({"areas": ()}, "at least one"), ({"areas": (4, 0)}, "areas\\[1\\]"),
                          ({"input_areas": (2,)}, "input_areas"), ({"output_areas": ()}, "output_areas"),
                          ({"delay_steps": -1}, "delay_steps"), ({"excitatory_fraction": 0.0}, "excitatory"),
                          ({"hidden_noise": -0.1}, "hidden_noise"), ({"hidden_noise": math.nan}, "hidden_noise"),
                          ({"connections": [[True, True], [True, False]]}, "diagonal"),
                          ({"connections": [[False]]}, "matrix")]:
        with pytest.raises(ValueError, match=match):
            ModularGRUPolicy(N_OBS, N_MUS, **{"areas": (4, 4), **kwargs})


def test_input_mask():
    """Only the input areas see the observation: at step 1 (from the zero state) d(area state)/d(obs) is exactly
    0 for the others; area 1 gets the observation one step later, through area 0."""
    torch.manual_seed(0)
    p = ModularGRUPolicy(N_OBS, N_MUS, (6, 5, 4), input_areas=(0, 2))
    obs = torch.randn(2, N_OBS)
    jac = torch.autograd.functional.jacobian(lambda o: p(o)[1], obs)  # (B, n_hidden, B, n_obs)
    a0, a1, a2 = (jac[:, s] for s in p.area_slices())
    assert torch.count_nonzero(a1) == 0
    assert a0.abs().sum() > 0 and a2.abs().sum() > 0
    obs2 = torch.randn(2, 2, N_OBS)
    jac2 = torch.autograd.functional.jacobian(lambda o: steps(p, o)[-1], obs2)
    assert jac2[:, p.area_slices()[1]].abs().sum() > 0


def test_output_mask():
    """The excitations read the output areas only: with no inter-area projections, the action does not depend on
    a non-output area's state at all."""
    torch.manual_seed(0)
    p = ModularGRUPolicy(N_OBS, N_MUS, (6, 5), input_areas=(0, 1), output_areas=(1,),
                         connections=[[False, False], [False, False]])
    assert p.readout.in_features == 5
    obs, h = torch.randn(3, N_OBS), torch.randn(3, p.n_hidden).tanh()
    jac = torch.autograd.functional.jacobian(lambda x: p(obs, x)[0], h)  # (B, n_muscles, B, n_hidden)
    area0, area1 = p.area_slices()
    assert torch.count_nonzero(jac[..., area0]) == 0 and jac[..., area1].abs().sum() > 0
    jac_obs = torch.autograd.functional.jacobian(lambda o: p(o, h)[0], obs)
    assert jac_obs.abs().sum() > 0  # area 1 is an input area too


def test_dale_signs_survive_optimiser_steps():
    """Inter-area weights from excitatory units stay >= 0, inhibitory units send none, after Adam steps on random
    gradients; unconnected area pairs stay at 0."""
    torch.manual_seed(0)
    p = ModularGRUPolicy(N_OBS, N_MUS, (10, 10, 5), dale=True, excitatory_fraction=0.8,
                         connections=[[False, True, False], [True, False, True], [False, False, False]])
    exc = p.excitatory()
    assert exc.tolist() == [True] * 8 + [False] * 2 + [True] * 8 + [False] * 2 + [True] * 4 + [False]
    opt = torch.optim.Adam(p.parameters(), lr=0.5)
    before = p.effective_weights()["inter"].detach().clone()
    for _ in range(3):
        opt.zero_grad()
        for q in p.parameters():
            q.grad = torch.randn_like(q)
        opt.step()
        w = p.effective_weights()["inter"]
        assert (w[:, exc] >= 0).all() and torch.count_nonzero(w[:, ~exc]) == 0
        assert torch.count_nonzero(w[:, 20:]) == 0  # area 2 projects nowhere
        n = p.core.n_units
        for g in range(3):  # area 0 -> area 2 is not a connection
            assert torch.count_nonzero(w[g * n + 20:g * n + 25, 0:10]) == 0
    assert not torch.equal(w.detach(), before) and (w[:, exc] > 0).any()
    # without Dale's law the inter-area weights take either sign
    q = ModularGRUPolicy(N_OBS, N_MUS, (10, 10))
    w = q.effective_weights()["inter"]
    assert (w < 0).any() and (w > 0).any()


@pytest.mark.parametrize("k", [0, 2])
def test_delay_steps(k):
    """A change of area 0 at step t (its observation) reaches area 1 first at step t + k + 1, exactly."""
    torch.manual_seed(0)
    p = ModularGRUPolicy(N_OBS, N_MUS, (6, 5), delay_steps=k).eval()
    obs = torch.randn(10, 2, N_OBS)
    t = 3  # steps count from 1: obs[t - 1] is the observation of step t
    moved = obs.clone()
    moved[t - 1] += 1.0
    with torch.no_grad():
        a, b = steps(p, obs), steps(p, moved)
    area0, area1 = p.area_slices()
    changed0 = [s + 1 for s in range(10) if not torch.equal(a[s, :, area0], b[s, :, area0])]
    changed1 = [s + 1 for s in range(10) if not torch.equal(a[s, :, area1], b[s, :, area1])]
    assert changed0[0] == t and changed1[0] == t + k + 1
    # the history: the columns after the current state hold the states of the k steps before, newest first
    n = p.core.n_units
    for j in range(1, k + 1):
        torch.testing.assert_close(a[-1, :, j * n:(j + 1) * n], a[-1 - j, :, :n], rtol=0, atol=0)


def test_hidden_noise_in_training_mode_only():
    torch.manual_seed(0)
    p = ModularGRUPolicy(N_OBS, N_MUS, (6, 5), hidden_noise=0.1)
    quiet = ModularGRUPolicy(N_OBS, N_MUS, (6, 5), hidden_noise=0.0)
    quiet.load_state_dict(p.state_dict())
    obs = torch.randn(4, N_OBS)
    a1, h1 = p.train()(obs)
    a2, h2 = p(obs)
    assert not torch.equal(h1, h2) and not torch.equal(a1, a2)
    assert 0.05 < (h1 - quiet(obs)[1]).std() < 0.2
    p.eval()
    assert torch.equal(p(obs)[1], p(obs)[1]) and torch.equal(p(obs)[1], quiet(obs)[1])


def test_config_round_trip():
    torch.manual_seed(0)
    p = ModularGRUPolicy(N_OBS, N_MUS, (6, 5, 3), input_areas=(0, 1), output_areas=(2,), delay_steps=1, dale=True,
                         excitatory_fraction=0.6, hidden_noise=0.05, output_bias=-2.0,
                         connections=torch.tensor([[0, 1, 1], [1, 0, 1], [0, 1, 0]]))
    config = json.loads(json.dumps(p.config()))
    q = ModularGRUPolicy.from_config(config)
    assert q.config() == p.config()
    q.load_state_dict(p.state_dict())
    obs = torch.randn(5, 3, N_OBS)
    p.eval(), q.eval()
    assert torch.equal(steps(p, obs), steps(q, obs))
    with pytest.raises(TypeError):
        ModularGRUPolicy.from_config({**config, "unknown": 1})


def test_gradients_through_a_rollout():
    torch.manual_seed(0)
    env = mn_gym.make(ENV, batch_size=4, deterministic=True)
    p = ModularGRUPolicy(env.obs_size, env.action_size, (8, 8), delay_steps=2, dale=True, hidden_noise=0.01)
    ro = mn_gym.rollout(env, p, n_steps=10)
    assert ro.hidden.shape == (10, 4, p.n_hidden)
    (-ro.rewards.mean() + 1e-3 * ro.hidden.square().mean()).backward()
    grads = [q.grad for q in p.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert p.core.weight_inter.grad.abs().sum() > 0 and p.core.weight_obs.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------ BPTT
def test_train_bptt_checkpoint_reload_and_resume(tmp_path):
    torch.manual_seed(0)
    p = ModularGRUPolicy(N_OBS, N_MUS, (8, 8), delay_steps=1, dale=True, hidden_noise=0.01)
    settings = BPTTSettings(batch_size=8, eval_every=1, activity_weight=1e-3, activity_rate_weight=1e-3)
    held_out = HeldOut.make(ENV, episodes=8)
    r = train_bptt(ENV, settings, iterations=2, policy=p, out_dir=tmp_path, progress=False, tensorboard=False,
                   held_out=held_out)
    assert r.iterations == 2 and r.skipped == 0 and all(math.isfinite(c["train_loss"]) for c in r.curve[1:])
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["policy_spec"]["class"] == "ModularGRUPolicy" and ckpt["policy_spec"]["config"] == p.config()
    # a run folder (run.json beside the checkpoint, as mn_gym.train.runs writes it) loads the modular policy
    run = {"env_id": ENV, "algo": "bptt", "seed": 0, "settings": asdict(settings), "env_kwargs": {}}
    (tmp_path / "run.json").write_text(json.dumps(run))
    _, loaded = load_policy(tmp_path)
    assert isinstance(loaded, ModularGRUPolicy) and not loaded.training
    assert held_out.evaluate(loaded) == held_out.evaluate(r.policy)
    # a resumed run without a policy given rebuilds the modular architecture from the checkpoint
    r2 = train_bptt(ENV, settings, iterations=3, out_dir=tmp_path, resume=True, progress=False, tensorboard=False,
                    held_out=held_out)
    assert isinstance(r2.policy, ModularGRUPolicy) and r2.iterations == 3
    # an unknown policy class is refused as a bad file
    ckpt["policy_spec"] = {**ckpt["policy_spec"], "class": "Mystery"}
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    with pytest.raises(BadFileError, match="holds no GRU policy"):
        load_policy(tmp_path)


def test_truncated_bptt_with_the_modular_state():
    torch.manual_seed(0)
    p = ModularGRUPolicy(N_OBS, N_MUS, (8, 8), delay_steps=3)
    r = train_bptt(ENV, BPTTSettings(batch_size=8, eval_every=2, truncation=5, activity_rate_weight=1e-2),
                   iterations=2, policy=p, progress=False, tensorboard=False, held_out=HeldOut.make(ENV, episodes=8))
    assert r.iterations == 2 and r.skipped == 0 and math.isfinite(r.curve[-1]["train_loss"])


def _iteration_loss(policy: nn.Module, **weights: float) -> float:
    env = mn_gym.make(ENV, batch_size=4, seed=0)
    policy = copy.deepcopy(policy)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    loss, _, ok = bptt.train_iteration(env, policy, opt, 1.0, None, **weights)
    assert ok
    return loss


def test_activity_weights_change_the_loss():
    torch.manual_seed(0)
    for policy in (ModularGRUPolicy(N_OBS, N_MUS, (8, 8), delay_steps=1), mn_gym.GRUPolicy(N_OBS, N_MUS, 8)):
        plain = _iteration_loss(policy)
        assert _iteration_loss(policy) == plain  # the same seed, the same loss
        assert _iteration_loss(policy, activity_weight=0.0, activity_rate_weight=0.0) == plain
        assert _iteration_loss(policy, activity_weight=0.1) > plain
        assert _iteration_loss(policy, activity_rate_weight=0.1) > plain
    mlp = mn_gym.MLPPolicy(N_OBS, N_MUS, (8,))
    assert _iteration_loss(mlp, activity_weight=0.1) == _iteration_loss(mlp)  # no hidden state, no term


def test_activity_loss_values():
    """mean h^2 and mean (h_t - h_{t-1})^2 of the current states only (the delay history left out), the first
    difference from the state the window started from."""
    p = ModularGRUPolicy(N_OBS, N_MUS, (2, 1), delay_steps=1)
    hidden = torch.zeros(2, 1, 6)
    hidden[0, 0, :3] = torch.tensor([1.0, 2.0, 3.0])
    hidden[1, 0, :3] = torch.tensor([1.0, 0.0, 3.0])
    hidden[..., 3:] = 100.0  # the history: ignored
    assert bptt.activity(p, hidden).shape == (2, 1, 3)
    assert bptt.activity_loss(p, hidden, None, 1.0, 0.0).item() == pytest.approx((14 + 10) / 6)
    # differences: [1, 2, 3] from zeros, then [0, -2, 0]
    assert bptt.activity_loss(p, hidden, None, 0.0, 1.0).item() == pytest.approx((14 + 4) / 6)
    previous = torch.zeros(1, 6)
    previous[0, :3] = torch.tensor([1.0, 2.0, 3.0])
    assert bptt.activity_loss(p, hidden, previous, 0.0, 2.0).item() == pytest.approx(2 * 4 / 6)
    assert bptt.activity_loss(p, hidden, None, 0.0, 0.0) == 0.0
    g = mn_gym.GRUPolicy(N_OBS, N_MUS, 6)
    assert bptt.activity(g, hidden) is hidden


def test_activity_settings_are_checked():
    assert BPTTSettings().activity_weight == 0.0 and BPTTSettings().activity_rate_weight == 0.0
    assert BPTTSettings(activity_weight=0).activity_weight == 0.0  # an int is stored as a float
    assert BPTTSettings.parse({"activity_rate_weight": "1e-3"}).activity_rate_weight == 1e-3
    for name in ("activity_weight", "activity_rate_weight"):
        for bad in (-1e-3, math.nan, math.inf):
            with pytest.raises(ValueError, match=f"{name} must be >= 0"):
                BPTTSettings(**{name: bad})
        with pytest.raises(ValueError, match=f"{name} must be float"):
            BPTTSettings(**{name: "big"})
