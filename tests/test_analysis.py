"""mn_gym.analysis: PCA, cosine tuning, fixed points, behaviour measures, and `analyze_run` / `mn-gym analyze`."""

import json
import math
from pathlib import Path

import pytest
import torch
from test_cli import run_cli

import mn_gym
from mn_gym import analysis
from mn_gym.analysis import run as analysis_run

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------------ PCA
def test_pca_recovers_planted_low_rank_structure():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(2, 12, generator=g, dtype=torch.float64)
    data = torch.randn(400, 2, generator=g, dtype=torch.float64) @ w + 3.0
    data = data + 1e-4 * torch.randn(400, 12, generator=g, dtype=torch.float64)
    fit = analysis.pca(data, n_components=3)
    assert fit.mean.shape == (12,) and fit.components.shape == (3, 12) and fit.scores.shape == (400, 3)
    assert fit.explained_variance_ratio[:2].sum() > 0.99
    assert torch.all(fit.explained_variance_ratio[:-1] >= fit.explained_variance_ratio[1:])
    torch.testing.assert_close(fit.components @ fit.components.T, torch.eye(3, dtype=torch.float64))
    top = fit.components[:2]
    torch.testing.assert_close(w @ top.T @ top, w, atol=1e-4, rtol=0)  # W's rows lie in the span of PC1-2
    biggest = fit.components.gather(1, fit.components.abs().argmax(1, keepdim=True))
    assert torch.all(biggest > 0)  # the sign convention
    torch.testing.assert_close(analysis.project(fit, data), fit.scores)


def test_pca_of_time_major_activity_keeps_its_shape():
    activity = torch.randn(20, 6, 10, generator=torch.Generator().manual_seed(1))
    fit = analysis.pca(activity, n_components=10)
    assert fit.scores.shape == (20, 6, 10)
    torch.testing.assert_close(fit.explained_variance_ratio.sum(), torch.tensor(1.0))
    torch.testing.assert_close(fit.mean + fit.scores @ fit.components, activity, atol=1e-5, rtol=0)
    torch.testing.assert_close(fit.scores.reshape(-1, 10), analysis.pca(activity.reshape(-1, 10), 10).scores)


@pytest.mark.parametrize(("activity", "k", "match"), [
    (torch.zeros(5), 1, "must be a \\(T, B, H\\) or \\(N, H\\)"),
    (torch.randn(10, 4), 0, "n_components must be an int in .* = \\[1, 4\\]"),
    (torch.randn(3, 4), 4, "n_components must be an int in .* = \\[1, 3\\]"),
    (torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), 1, "non-finite"),
    (torch.ones(6, 3), 2, "zero variance"),
])
def test_pca_rejects_bad_input(activity, k, match):
    with pytest.raises(ValueError, match=match):
        analysis.pca(activity, k)


def test_project_rejects_wrong_units():
    fit = analysis.pca(torch.randn(30, 5), 2)
    with pytest.raises(ValueError, match="must have 5 units"):
        analysis.project(fit, torch.randn(4, 6))


# --------------------------------------------------------------------------------------------- tuning
def test_tuning_recovers_planted_cosine_tuning():
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8) - 1.0
    preferred = torch.tensor([0.3, -2.0, math.pi, 1.5], dtype=torch.float64)
    depth = torch.tensor([1.0, 0.2, 3.0, 0.5], dtype=torch.float64)
    baseline = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64)
    rates = baseline + depth * torch.cos(angles[:, None] - preferred)
    constant = torch.full((8, 1), 0.7, dtype=torch.float64)
    fit = analysis.tuning(torch.cat((rates, constant), dim=1), angles)
    torch.testing.assert_close(fit.preferred_direction[:4], preferred)
    torch.testing.assert_close(fit.depth[:4], depth)
    torch.testing.assert_close(fit.baseline, torch.cat((baseline, torch.tensor([0.7], dtype=torch.float64))))
    torch.testing.assert_close(fit.r2[:4], torch.ones(4, dtype=torch.float64))
    assert fit.r2[4] == 0  # a unit without variance
    assert torch.all((fit.preferred_direction > -math.pi) & (fit.preferred_direction <= math.pi))


def test_tuning_r2_drops_for_untuned_units():
    g = torch.Generator().manual_seed(0)
    angles = torch.rand(200, generator=g) * 2 * math.pi
    noise = torch.randn(200, 1, generator=g)
    fit = analysis.tuning(torch.cat((torch.cos(angles)[:, None], noise), dim=1), angles)
    assert fit.r2[0] > 0.999 and fit.r2[1] < 0.1


@pytest.mark.parametrize(("activity", "angles", "match"), [
    (torch.randn(8), torch.zeros(8), "activity must be a \\(B trials, H units\\)"),
    (torch.randn(8, 3), torch.zeros(7), "angles must be a \\(8,\\) tensor"),
    (torch.randn(2, 3), torch.zeros(2), "at least 3 trials"),
    (torch.randn(8, 3), torch.full((8,), float("inf")), "angles holds non-finite"),
])
def test_tuning_rejects_bad_input(activity, angles, match):
    with pytest.raises(ValueError, match=match):
        analysis.tuning(activity, angles)


# --------------------------------------------------------------------------------------- fixed points
def _linear_map(eigenvalues, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = len(eigenvalues)
    q = torch.linalg.qr(torch.randn(h, h, generator=g, dtype=torch.float64))[0]
    a = q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T
    b = 0.2 * torch.randn(h, generator=g, dtype=torch.float64)
    return a, b, torch.linalg.solve(torch.eye(h, dtype=torch.float64) - a, b)


def test_fixed_point_of_a_stable_linear_map():
    a, b, expected = _linear_map([0.5, -0.4, 0.2, 0.0])
    initial = torch.randn(16, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    start = initial.clone()
    fp = analysis.find_fixed_points(lambda h: h @ a.T + b, initial, tolerance=1e-12)
    torch.testing.assert_close(initial, start)  # the starting states are copied
    assert fp.converged.all() and fp.unique.shape == (1, 4)
    torch.testing.assert_close(fp.unique[0], expected, atol=1e-5, rtol=0)
    assert fp.stable.tolist() == [True]
    eigenvalues = torch.sort(fp.eigenvalues[0].real).values
    torch.testing.assert_close(eigenvalues, torch.sort(torch.linalg.eigvals(a).real).values)


def test_unstable_fixed_point_is_found_and_flagged():
    a, b, expected = _linear_map([1.5, 0.3, -0.2])
    initial = torch.randn(8, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    fp = analysis.find_fixed_points(lambda h: h @ a.T + b, initial, tolerance=1e-12)
    assert fp.unique.shape == (1, 3)
    torch.testing.assert_close(fp.unique[0], expected, atol=1e-5, rtol=0)
    assert fp.stable.tolist() == [False]
    assert fp.eigenvalues.abs().max() == pytest.approx(1.5)


def test_two_fixed_points_are_both_found():
    """x -> x + 0.2 (x^2 - 1), y -> 0.5 y: fixed points (1, 0), a saddle (dF/dx = 1.4), and (-1, 0), stable."""
    def step(h):
        return torch.stack((h[:, 0] + 0.2 * (h[:, 0] ** 2 - 1), 0.5 * h[:, 1]), dim=-1)

    x = torch.cat((torch.linspace(-1.8, -0.3, 8), torch.linspace(0.3, 1.8, 8)))
    initial = torch.stack((x, torch.linspace(-1, 1, 16)), dim=-1)
    fp = analysis.find_fixed_points(step, initial, tolerance=1e-10)
    assert fp.converged.all() and fp.unique.shape == (2, 2)
    order = torch.argsort(fp.unique[:, 0])
    torch.testing.assert_close(fp.unique[order], torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), atol=1e-3, rtol=0)
    assert fp.stable[order].tolist() == [True, False]
    assert fp.eigenvalues.dtype == torch.complex64 and fp.eigenvalues.shape == (2, 2)


def test_gru_step_fixed_points_leave_the_policy_alone():
    torch.manual_seed(0)
    policy = mn_gym.GRUPolicy(5, 3, n_hidden=8)
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    step = analysis.gru_step(policy, torch.randn(5) * 0.3)
    with torch.no_grad():  # the finder turns gradients on itself
        fp = analysis.find_fixed_points(step, 0.5 * torch.randn(16, 8))
    # an untrained GRU has one attractor; the defaults count its 16 converged copies once
    assert fp.converged.all() and fp.unique.shape == (1, 8) and fp.eigenvalues.shape == (1, 8)
    assert fp.stable.tolist() == [True]
    torch.testing.assert_close(step(fp.unique), fp.unique, atol=2e-4, rtol=0)
    assert all(p.grad is None for p in policy.parameters())
    for k, v in policy.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert analysis.gru_step(policy, torch.randn(1, 5))(torch.zeros(3, 8)).shape == (3, 8)


def test_fixed_point_input_errors():
    with pytest.raises(ValueError, match="initial must be a non-empty \\(N states, H units\\)"):
        analysis.find_fixed_points(lambda h: h, torch.zeros(4))
    with pytest.raises(ValueError, match="initial holds non-finite"):
        analysis.find_fixed_points(lambda h: h, torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="step must map \\(N, H\\) states to \\(N, H\\)"):
        analysis.find_fixed_points(lambda h: h[:, :1], torch.zeros(2, 3))
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        analysis.find_fixed_points(lambda h: h, torch.zeros(2, 3), lr=0)
    with pytest.raises(ValueError, match="iterations must be a positive int"):
        analysis.find_fixed_points(lambda h: h, torch.zeros(2, 3), iterations=0)
    with pytest.raises(ValueError, match="obs must be one observation"):
        analysis.gru_step(mn_gym.GRUPolicy(5, 3, n_hidden=8), torch.zeros(2, 5))


# ------------------------------------------------------------------------------------------ behaviour
@pytest.fixture(scope="module")
def centre_out():
    env = mn_gym.make("ArmCentreOut-v0", batch_size=8, deterministic=True)

    def policy(obs, h):
        return torch.full((obs.shape[0], env.action_size), 0.05), h

    ro = mn_gym.rollout(env, policy, seed=0, options={"target_index": torch.arange(8)}, n_steps=20)
    return env, ro


def test_behaviour_shapes(centre_out):
    env, ro = centre_out
    speed = analysis.hand_speed(ro)
    assert speed.shape == (21, 8) and torch.all(speed >= 0)
    torch.testing.assert_close(speed, torch.linalg.vector_norm(ro.hand[..., 2:], dim=-1))
    deviation = analysis.lateral_deviation(ro)
    assert deviation.shape == (21, 8)
    torch.testing.assert_close(deviation[0], torch.zeros(8), atol=1e-6, rtol=0)  # starts at the origin
    with pytest.raises(ValueError, match="has none"):
        analysis.channel_force(env, ro)


def line_and_normal(ro):
    """Each episode's origin -> target vector (B, 2) and the line's counter-clockwise unit normal (B, 2)."""
    ts = ro.final_state.task
    line = ts.target - ts.origin
    e = line / torch.linalg.vector_norm(line, dim=-1, keepdim=True)
    return line, torch.stack((-e[:, 1], e[:, 0]), dim=-1)


def test_lateral_deviation_on_a_synthetic_path(centre_out):
    _, ro = centre_out
    ts = ro.final_state.task
    line, normal = line_and_normal(ro)
    s = torch.linspace(0, 1.2, ro.hand.shape[0])[:, None, None]
    on_line = ts.origin + s * line
    velocity = torch.zeros_like(on_line)
    hand = torch.cat((on_line, velocity), dim=-1)
    torch.testing.assert_close(analysis.lateral_deviation(ro._replace(hand=hand)), torch.zeros(21, 8),
                               atol=1e-6, rtol=0)
    left = torch.cat((on_line + 0.02 * normal, velocity), dim=-1)  # 2 cm to the counter-clockwise side
    torch.testing.assert_close(analysis.lateral_deviation(ro._replace(hand=left)), torch.full((21, 8), 0.02))
    same = ro.final_state._replace(task=ts._replace(target=ts.origin))
    with pytest.raises(ValueError, match="target coincides with origin"):
        analysis.lateral_deviation(ro._replace(final_state=same))


def test_peak_deviation_keeps_the_sign_of_the_largest_excursion(centre_out):
    _, ro = centre_out
    ts = ro.final_state.task
    line, normal = line_and_normal(ro)
    s = torch.linspace(0, 1, ro.hand.shape[0])[:, None, None]
    bulge = torch.sin(torch.pi * s) * torch.tensor([0.03, -0.01] * 4)[None, :, None]  # +3 cm or -1 cm midway
    hand = torch.cat((ts.origin + s * line + bulge * normal, torch.zeros_like(bulge).expand(-1, -1, 2)), dim=-1)
    peak = analysis.peak_deviation(ro._replace(hand=hand))
    torch.testing.assert_close(peak, torch.tensor([0.03, -0.01] * 4), atol=2e-4, rtol=0)


def test_channel_force_on_channel_trials():
    env = mn_gym.make("ArmCurlFieldChannel-v0", batch_size=8, deterministic=True, channel_probability=0.5)

    def policy(obs, h):
        return torch.full((obs.shape[0], env.action_size), 0.1), h

    ro = mn_gym.rollout(env, policy, seed=0, options={"target_index": torch.arange(8)}, n_steps=30)
    force = analysis.channel_force(env, ro)
    channel = ro.final_state.task.channel
    assert force.shape == (31, 8) and channel.any() and not channel.all()
    assert torch.all(force[:, ~channel] == 0) and force[:, channel].abs().max() > 0
    expected = env.task.compensation(ro.final_state.task, ro.hand[-1])
    torch.testing.assert_close(force[-1], expected)


def test_adaptation_index():
    g = torch.Generator().manual_seed(0)
    ideal = 15.0 * torch.rand(50, 8, generator=g)
    assert analysis.adaptation_index(0.7 * ideal, ideal) == pytest.approx(0.7)
    assert analysis.adaptation_index(torch.zeros(50, 8), ideal) == 0.0
    with pytest.raises(ValueError, match="one shape"):
        analysis.adaptation_index(ideal[1:], ideal)
    with pytest.raises(ValueError, match="ideal force is zero everywhere"):
        analysis.adaptation_index(ideal, torch.zeros(50, 8))


# --------------------------------------------------------------------------------- analyze_run, CLI
@pytest.fixture(scope="module")
def curl_run(tmp_path_factory):
    """A BPTT run of two tiny iterations on the curl-field task (centre-out family, with force channels)."""
    out = tmp_path_factory.mktemp("analysis") / "run"
    run_cli("train", "--algo", "bptt", "--env", "ArmCurlField-v0", "--steps", 1600, "--out", out, "--no-progress",
            "--eval-episodes", 16, "--set", "batch_size=8", "--set", "eval_every=1", "--set", "n_hidden=16")
    return out


FIGURES = ["adaptation.png", "behaviour.png", "channel_force.png", "fixed_points.png", "pca_trajectories.png",
           "tuning.png"]


def test_analyze_run_writes_figures_and_numbers(curl_run, tmp_path):
    result = analysis.analyze_run(curl_run, tmp_path / "out", episodes_per_target=2)
    saved = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert saved == {k: v for k, v in result.items() if k != "out_dir"} and result["out_dir"] == str(tmp_path / "out")
    assert saved["files"] == FIGURES and all((tmp_path / "out" / f).stat().st_size > 1000 for f in FIGURES)
    assert saved["episodes"] == 16 and saved["n_hidden"] == 16 and saved["hidden_state_analysis"] == "done"
    assert len(saved["explained_variance_ratio"]) == 3 and 0 < sum(saved["explained_variance_ratio"]) <= 1 + 1e-6
    assert 0 <= saved["n_tuned_units"] <= 16 and 0 <= saved["fixed_points_stable"] <= saved["fixed_points_unique"]
    assert saved["fixed_points_unique"] <= saved["fixed_points_converged"] <= 64
    assert saved["mean_final_distance_m"] > 0 and 0 <= saved["success_rate"] <= 1
    assert math.isfinite(saved["adaptation_index"])
    assert all(math.isfinite(saved[k]) for k in ("field_peak_deviation_m", "catch_peak_deviation_m"))
    assert "before_adaptation_index" not in saved
    with pytest.raises(ValueError, match="episodes_per_target must be a positive int"):
        analysis.analyze_run(curl_run, tmp_path / "bad", episodes_per_target=0)


def test_analyze_run_without_hidden_state(curl_run, tmp_path, monkeypatch):
    """A policy without a (B, H) hidden state (an MLP, as from the RL algos) gets the behaviour only."""
    run, gru = analysis_run.load_policy(curl_run)
    mlp = mn_gym.MLPPolicy(gru.n_obs, gru.n_muscles, hidden_sizes=(8,))
    monkeypatch.setattr(analysis_run, "load_policy", lambda _: (run, mlp))
    result = analysis.analyze_run(curl_run, tmp_path)
    assert result["hidden_state_analysis"].startswith("skipped") and "n_hidden" not in result
    assert result["files"] == ["adaptation.png", "behaviour.png", "channel_force.png"] and result["episodes"] == 8


def test_analyze_run_before_and_after(curl_run, tmp_path, monkeypatch):
    """With a before run the adaptation numbers come for both policies; the run itself as its own "before" gives
    the same numbers twice. A before policy of another env's sizes, or before on a task without a field, is
    refused by name."""
    result = analysis.analyze_run(curl_run, tmp_path / "same", before=curl_run)
    assert result["before_adaptation_index"] == result["adaptation_index"]
    assert result["before_field_peak_deviation_m"] == result["field_peak_deviation_m"]
    assert (tmp_path / "same" / "adaptation.png").stat().st_size > 1000
    real = analysis_run.load_policy
    other = mn_gym.MLPPolicy(mn_gym.make("PointMassReach-v0").obs_size, 4, hidden_sizes=(4,))
    monkeypatch.setattr(analysis_run, "load_policy", lambda path: (
        ({"env_id": "PointMassReach-v0", "env_kwargs": {}}, other) if Path(path).name == "pm" else real(path)))
    with pytest.raises(ValueError, match="does not fit this run's env"):
        analysis.analyze_run(curl_run, tmp_path / "bad", before=tmp_path / "pm")
    run, gru = real(curl_run)
    monkeypatch.setattr(analysis_run, "load_policy", lambda _: ({**run, "env_id": "ArmCentreOut-v0"}, gru))
    with pytest.raises(ValueError, match="before is for curl-field tasks"):
        analysis.analyze_run(curl_run, tmp_path / "bad", before=curl_run)


def test_analyze_run_with_a_modular_policy(curl_run, tmp_path, monkeypatch):
    """A ModularGRUPolicy gets the hidden-state analyses on its areas' current states (no delay history)."""
    run, gru = analysis_run.load_policy(curl_run)
    modular = mn_gym.ModularGRUPolicy(gru.n_obs, gru.n_muscles, areas=(6, 4), delay_steps=2).eval()
    monkeypatch.setattr(analysis_run, "load_policy", lambda _: (run, modular))
    result = analysis.analyze_run(curl_run, tmp_path)
    assert result["hidden_state_analysis"] == "done" and result["n_hidden"] == 10 and result["files"] == FIGURES


def test_cli_analyze(curl_run, capsys):
    run_cli("analyze", curl_run)
    text = capsys.readouterr().out
    assert "ArmCurlField-v0 bptt, 8 episodes: success" in text and "adaptation index" in text
    assert (curl_run / "analysis" / "analysis.json").is_file() and "tuning.png" in text
    run_cli("analyze", curl_run.parent / "missing", expect=2)
    assert "not an mn_gym run folder" in capsys.readouterr().err
    run_cli("analyze", curl_run, "--episodes-per-target", 0, expect=2)
