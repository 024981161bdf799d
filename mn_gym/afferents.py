"""Afferent firing models: muscle spindle Ia / II and Golgi tendon organ Ib rates as pure torch functions.

    ia = spindle_ia(length, velocity, optimal_length, max_velocity)      # (B, M) normalised firing
    ii = spindle_ii(length, optimal_length)
    ib = gto_ib(force, max_isometric_force)

Inputs are mn_gym's normalised muscle state, batch-first, (B, M) each: `length` = fibre length / optimal fibre
length (dimensionless, 1 at optimal length), `velocity` = fibre velocity / max velocity (dimensionless,
positive when the fibre lengthens), `force` in N. The per-muscle scales are (M,) tensors (or anything that
broadcasts against (B, M)): `optimal_length` in m, `max_velocity` in m/s (mn_gym's Hill muscles keep max
velocity in m/s: 10 optimal lengths/s by default), `max_isometric_force` in N. The models are written in the
units of their source, so the inputs are converted first:

    stretch  d = (length - 1) x optimal_length x 1000           mm, from optimal length
    velocity v = velocity x max_velocity x 1000                  mm/s, of stretch (lengthening positive)

Outputs are firing rates in imp/s divided by `RATE_SCALE` = 100 imp/s ("normalised firing": O(1) for a
network; multiply by 100 for imp/s). Every rate is clamped at >= 0 (a neuron cannot fire negatively) with a
smooth clamp, softplus with sharpness `beta` = 1 per imp/s: softplus_beta(r) = log(1 + exp(beta r)) / beta. It
differs from max(r, 0) by at most log(2) / beta = 0.69 imp/s (at r = 0; < 1% of RATE_SCALE) and its gradient
is sigmoid(beta r): 1/2 at threshold, falling as exp(beta r) below it, so a silent afferent still passes a
(small) gradient near threshold instead of exactly zero. Pass `beta=None` for the hard clamp max(r, 0).

Models (after Prochazka & Gorassini 1998, "Models of ensemble firing of muscle spindle afferents recorded
during normal locomotion in cats", J Physiol 507(1):277-291, and Prochazka 1999, "Quantifying
proprioception", Prog Brain Res 123:133-142; cat hindlimb data). The constants are those of the simplified
ensemble models as implemented here, stated plainly; they are "after" the sources (fits to cat ensemble
firing, offsets and the fusimotor / EMG term vary between the published fits), not a re-fit:

    Ia (imp/s) = 4.3 sign(v) |v|^0.6 + 2 d + 100 + gamma_coupling x activation
    II (imp/s) = 13.5 d + 20 + gamma_coupling x activation
    Ib (imp/s) = 333 F / F_max

with d in mm, v in mm/s, F and F_max in N, activation in [0, 1]. The power law of velocity (exponent 0.6)
is Prochazka & Gorassini's best-fitting form (spindle primary rate ~ the square root of velocity); the
fusimotor drive is modelled, as there, as a term linked to muscle activation (alpha-gamma coactivation), off
by default (`gamma_coupling` = 0 imp/s per unit activation). The tendon organ is linear in tendon force,
after Prochazka (1999) and the near-linear force encoding of tendon organ ensembles (Crago, Houk & Rymer
1982, J Neurophysiol 47:1069-1083).

|v|^0.6 has an infinite slope at v = 0 (NaN gradients at rest), so it is regularised as
v (v^2 + eps^2)^(-0.2) with eps = `VELOCITY_EPS` = 1 mm/s: odd, smooth, slope eps^-0.4 = 1 at rest, and
within 0.2% of sign(v)|v|^0.6 for |v| >= 10 mm/s.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["RATE_SCALE", "VELOCITY_EPS", "gto_ib", "spindle_ia", "spindle_ii", "stretch_mm", "velocity_mm_s"]

RATE_SCALE = 100.0  # imp/s: outputs are rates / RATE_SCALE
VELOCITY_EPS = 1.0  # mm/s: regularisation of |v|^0.6 at rest
BETA = 1.0  # 1 / (imp/s): sharpness of the softplus clamp at 0 imp/s

IA_VELOCITY_GAIN, IA_VELOCITY_EXPONENT = 4.3, 0.6  # imp/s per (mm/s)^0.6, -
IA_LENGTH_GAIN, IA_OFFSET = 2.0, 100.0  # imp/s per mm, imp/s
II_LENGTH_GAIN, II_OFFSET = 13.5, 20.0  # imp/s per mm, imp/s
IB_FORCE_GAIN = 333.0  # imp/s per unit F / F_max


def stretch_mm(length: Tensor, optimal_length: Tensor | float) -> Tensor:
    """Fibre stretch from optimal length in mm, (B, M), from normalised `length` (l / l0) and l0 (m)."""
    return (length - 1.0) * optimal_length * 1000.0


def velocity_mm_s(velocity: Tensor, max_velocity: Tensor | float) -> Tensor:
    """Fibre stretch velocity in mm/s (lengthening positive), (B, M), from normalised `velocity` (v / vmax) and
    vmax (m/s)."""
    return velocity * max_velocity * 1000.0


def _clamp(rate: Tensor, beta: float | None) -> Tensor:
    """Rate (imp/s) clamped at >= 0 (softplus of sharpness `beta`, or max(r, 0) for None), / RATE_SCALE."""
    rate = rate.clamp_min(0.0) if beta is None else torch.nn.functional.softplus(rate, beta=beta)
    return rate / RATE_SCALE


def _fusimotor(rate: Tensor, activation: Tensor | None, gamma_coupling: float) -> Tensor:
    if gamma_coupling == 0.0:
        return rate
    if activation is None:
        raise ValueError("gamma_coupling != 0 needs the muscles' activation (B, M)")
    return rate + gamma_coupling * activation


def spindle_ia(length: Tensor, velocity: Tensor, optimal_length: Tensor | float, max_velocity: Tensor | float,
               activation: Tensor | None = None, *, gamma_coupling: float = 0.0, beta: float | None = BETA
               ) -> Tensor:
    """Spindle primary (group Ia) firing / 100 imp/s, (B, M): 4.3 sign(v)|v|^0.6 + 2 d + 100 (+ gamma_coupling x
    activation) imp/s, d in mm, v in mm/s (see the module docstring), clamped smoothly at >= 0.

    Args:
        length: fibre length / optimal length, (B, M). velocity: fibre velocity / max velocity, (B, M).
        optimal_length: (M,) m. max_velocity: (M,) m/s. activation: (B, M) in [0, 1], read only when
        gamma_coupling != 0. gamma_coupling: imp/s per unit activation (fusimotor drive linked to activation).
        beta: softplus sharpness (1 / (imp/s)), None for the hard clamp.
    """
    d = stretch_mm(length, optimal_length)
    v = velocity_mm_s(velocity, max_velocity)
    power = v * (v * v + VELOCITY_EPS ** 2) ** ((IA_VELOCITY_EXPONENT - 1.0) / 2.0)  # ~ sign(v)|v|^0.6
    rate = IA_VELOCITY_GAIN * power + IA_LENGTH_GAIN * d + IA_OFFSET
    return _clamp(_fusimotor(rate, activation, gamma_coupling), beta)


def spindle_ii(length: Tensor, optimal_length: Tensor | float, activation: Tensor | None = None, *,
               gamma_coupling: float = 0.0, beta: float | None = BETA) -> Tensor:
    """Spindle secondary (group II) firing / 100 imp/s, (B, M): 13.5 d + 20 (+ gamma_coupling x activation)
    imp/s, d in mm (static: no velocity term), clamped smoothly at >= 0. Arguments as `spindle_ia`."""
    rate = II_LENGTH_GAIN * stretch_mm(length, optimal_length) + II_OFFSET
    return _clamp(_fusimotor(rate, activation, gamma_coupling), beta)


def gto_ib(force: Tensor, max_isometric_force: Tensor | float, *, beta: float | None = BETA) -> Tensor:
    """Golgi tendon organ (group Ib) firing / 100 imp/s, (B, M): 333 F / F_max imp/s (linear in tendon force),
    clamped smoothly at >= 0.

    Args:
        force: muscle-tendon force (B, M) in N. max_isometric_force: F_max (M,) in N.
        beta: softplus sharpness (1 / (imp/s)), None for the hard clamp.
    """
    return _clamp(IB_FORCE_GAIN * force / max_isometric_force, beta)
