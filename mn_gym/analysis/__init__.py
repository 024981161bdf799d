"""Hidden-state and behaviour analyses of trained policies, as motor neuroscientists run them.

    from mn_gym import analysis
    fit = analysis.pca(ro.hidden)                                  # Churchland et al. 2012
    tuned = analysis.tuning(ro.hidden[40:70].mean(0), angles)      # Georgopoulos et al. 1982
    fp = analysis.find_fixed_points(analysis.gru_step(policy, ro.observations[0, 0]), ro.hidden[::10, 0])
    analysis.analyze_run("runs/ArmCentreOut-v0/bptt/seed0")        # figures + analysis.json (mn-gym analyze)

Modules: `population` (PCA, cosine tuning), `fixed_points` (Sussillo & Barak 2013), `behaviour` (hand speed,
lateral and peak deviation, force-channel adaptation; Smith, Ghazizadeh & Shadmehr 2006), `figures` and `run`.
"""

from mn_gym.analysis.behaviour import (
    adaptation_index,
    channel_force,
    hand_speed,
    lateral_deviation,
    peak_deviation,
)
from mn_gym.analysis.fixed_points import FixedPoints, find_fixed_points, gru_step
from mn_gym.analysis.population import PCA, Tuning, pca, project, tuning
from mn_gym.analysis.run import analyze_run

__all__ = [
    "PCA",
    "FixedPoints",
    "Tuning",
    "adaptation_index",
    "analyze_run",
    "channel_force",
    "find_fixed_points",
    "gru_step",
    "hand_speed",
    "lateral_deviation",
    "pca",
    "peak_deviation",
    "project",
    "tuning",
]
