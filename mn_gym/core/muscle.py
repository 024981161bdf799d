"""Muscle models: activation dynamics and force production, vectorised over batch and muscles.

Every tensor here is `(B, M)`: B batch elements, M muscles; per-muscle parameters are `(M,)`.
A muscle model turns activation `a`, musculotendon length `l_mt` (m) and velocity `v_mt` (m/s) (and, for
the compliant tendon, the fibre length `l_m`) into the rows of `state_names`: activation first, force (N)
last. Those rows are what MotorNet 0.3.0 stores as its muscle state, so the golden files compare directly.

Models and sources:
- `LinearMuscle`: force = activation x max isometric force.
- `KistemakerMuscle`: rigid-tendon Hill model of Kistemaker, Van Soest & Bobbert (2010), J Neurophysiol
  103:1457 (contraction dynamics of Van Soest & Bobbert 1993).
- `ThelenMuscle`: rigid-tendon Thelen (2003), J Biomech Eng 125:70.
- `MujocoMuscle`: the MuJoCo muscle curves (MuJoCo documentation, "Muscles"), rigid tendon.
- `CompliantKistemakerMuscle`: Kistemaker et al. (2010) with an elastic tendon; the fibre length is a state.
Activation dynamics for all: Thelen (2003) / MuJoCo first-order form with activation-dependent time constants.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.distributions import constraints

from mn_gym.core.params import Component, FloatLike, scalar_tensors

# Kistemaker / Van Soest & Bobbert contraction-dynamics constants.
_S_AS = 0.001  # slope of the lengthening force-velocity curve near vn = 0
_FL_WIDTH_SQ = 0.66**2  # width of the parabolic active force-length curve (squared)
_FL_MIN = 0.01  # floor of the active force-length curve
_A_REL = 0.41  # Hill constant a_rel (normalised)
_B_REL = 5.2  # Hill constant b_rel (1/s, normalised by optimal length)
_Q_CRIT = 0.3  # activation below which b_rel is reduced
_Q_MIN = 0.005
_K_SE = 1.0 / 0.04**2  # tendon stiffness: 4 % strain at max isometric force
_SQRT_K_SE = math.sqrt(_K_SE)

# Thelen (2003) constants.
_TH_AF = 0.25
_TH_FLEN = 1.4
_TH_GAMMA = 0.45
_TH_KPE = 5.0
_TH_EPS0 = 0.6


# b_rel = 5.2 (1 + 0.9 (min(a, 0.3) - 0.3) / (0.3 - 0.005))^2 = (_BR0 + _BR1 min(a, 0.3))^2
_BR_SLOPE = 0.9 / (_Q_CRIT - _Q_MIN)
_BR1 = math.sqrt(_B_REL) * _BR_SLOPE
_BR0 = math.sqrt(_B_REL) * (1.0 - _Q_CRIT * _BR_SLOPE)
_HOT_CONSTANTS = {"zero": 0.0, "half": 0.5, "one": 1.0, "four": 4.0, "a_rel": _A_REL, "br0": _BR0, "s_as": _S_AS,
                  "fl_slope": -2.0 / _FL_WIDTH_SQ, "two_br1": 2.0 * _BR1}


def _square(x: Tensor) -> Tensor:
    return x * x


class Muscle(Component):
    """Base class: per-muscle parameters plus the activation-dynamics constants.

    Subclasses define `state_names`, `required` (properties the user must give), `_derive` (fills derived
    parameters from properties unless the user gave them) and `rows`.
    """

    kind = "muscle"
    settings = ("n_muscles",)
    state_names: ClassVar[tuple[str, ...]]
    compliant: ClassVar[bool] = False
    # reproduces MotorNet 0.3.0's deviations rather than the physics (`MotorNetCompliantKistemakerMuscle`)
    motornet_compatible: ClassVar[bool] = False
    per_muscle: ClassVar[tuple[str, ...]] = ("max_isometric_force",)
    required: ClassVar[tuple[str, ...]] = ("max_isometric_force",)
    properties: ClassVar[tuple[str, ...]] = ()  # accepted by the constructor only, to derive parameters
    default_activation: ClassVar[dict[str, float]] = {
        "min_activation": 0.0,
        "tau_activation": 0.015,
        "tau_deactivation": 0.05,
    }
    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "max_isometric_force": constraints.nonnegative, "min_activation": constraints.nonnegative,
        "tau_activation": constraints.positive, "tau_deactivation": constraints.positive}

    def _check_relations(self) -> None:
        if not bool((self.min_activation < 1.0).all()):
            raise ValueError(f"{type(self).__name__}: min_activation must be < 1, got {float(self.min_activation)}")

    def __init__(
        self,
        n_muscles: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        **params: FloatLike,
    ) -> None:
        if not isinstance(n_muscles, int) or n_muscles < 1:
            raise ValueError(f"n_muscles must be a positive int, got {n_muscles!r}")
        self.n_muscles = n_muscles
        valid = set(self.tensor_shapes()) | set(self.properties)
        unknown = set(params) - valid
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown parameter(s) {sorted(unknown)}; valid: {sorted(valid)}")
        missing = [name for name in self.required if name not in params]
        if missing:
            raise TypeError(f"{type(self).__name__}: missing required parameter(s) {missing}")
        self._check_given(params)
        values: dict[str, Any] = dict(self.default_activation)
        values.update(params)
        values = self._derive(values)
        for name in self.properties:
            values.pop(name, None)
        self._set_tensors(values, dtype, device)

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {name: (self.n_muscles,) for name in self.per_muscle}
        shapes.update({name: () for name in self.default_activation})
        return shapes

    def _derive(self, values: dict[str, Any]) -> dict[str, Any]:
        return values

    @classmethod
    def from_config(cls, cfg: dict[str, Any], *, dtype: torch.dtype = torch.float32, device: Any = None) -> Muscle:
        return cls(cfg["n_muscles"], dtype=dtype, device=device, **cfg["params"])

    def _refresh(self) -> None:
        self._k = scalar_tensors(self.max_isometric_force, **_HOT_CONSTANTS)
        # d tau / da of the activation time constant, rising and (over f^2) falling
        self._tau_a_rising, self._tau_a_falling = 1.5 * self.tau_activation, -1.5 * self.tau_deactivation

    def _time_constant(self, u: Tensor, a: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(f = 0.5 + 1.5 a, rising = u > a, the time constant tau (s)), each (B, M)."""
        f = torch.add(self._k.half, a, alpha=1.5)
        rising = u > a
        return f, rising, torch.where(rising, self.tau_activation * f, self.tau_deactivation / f)

    def activation_rate(self, u: Tensor, a: Tensor) -> Tensor:
        """d(activation)/dt (1/s) for excitation `u` (already clipped) and activation `a`, both (B, M).

        First order with time constant tau_activation (0.5 + 1.5 a) while rising (u > a) and
        tau_deactivation / (0.5 + 1.5 a) while falling (Thelen 2003; MuJoCo).
        """
        return (u - a) / self._time_constant(u, a)[2]

    def activation_partials(self, u: Tensor, a: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`activation_rate` (1/s) and its partial derivatives d/du (1/s) and d/da (1/s), each (B, M)."""
        f, rising, tau = self._time_constant(u, a)
        rate = (u - a) / tau
        tau_a = torch.where(rising, self._tau_a_rising, self._tau_a_falling / (f * f))
        rate_u = tau.reciprocal()
        return rate, rate_u, torch.addcmul(self._k.one, rate, tau_a).mul_(rate_u).neg_()

    def rows(self, a: Tensor, l_mt: Tensor, v_mt: Tensor, l_m: Tensor | None = None) -> tuple[Tensor, ...]:
        """The muscle-state rows named in `state_names`, each (B, M)."""
        raise NotImplementedError

    # Whether `force_partials` is implemented (rigid-tendon models whose force is a function of the
    # activation and the musculotendon path alone); the fused step's adjoint needs it.
    has_force_partials: ClassVar[bool] = False

    def force_partials(self, a: Tensor, l_mt: Tensor, v_mt: Tensor
                       ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """Force (N) and its partial derivatives d/da, d/dl_mt, d/dv_mt, each (B, M) (rigid tendons only);
        None where a partial is identically zero."""
        raise NotImplementedError(f"{type(self).__name__} has no analytic force derivatives")

    def fibre_state(self, a: Tensor, l_mt: Tensor, v_mt: Tensor, l_m: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Fibre length (m) and velocity (m/s), (B, M) each: rows 1 and 2 of `rows`, often cheaper."""
        rows = self.rows(a, l_mt, v_mt, l_m)
        return rows[1], rows[2]

    def initial_fibre_length(self, l_mt: Tensor) -> Tensor:
        raise TypeError(f"{type(self).__name__} has a rigid tendon: its fibre length is not a state")

    def proprioception_scale(self) -> tuple[Tensor, Tensor]:
        """(length scale (m), velocity scale (m/s)), each (M,), that normalise fibre length and velocity."""
        one = torch.ones_like(self.max_isometric_force)
        return one, one


class LinearMuscle(Muscle):
    """Force = activation x max isometric force; length and velocity rows are the musculotendon values.

    MotorNet's `ReluMuscle`. Rows: activation, length (m), velocity (m/s), force (N).
    """

    kind = "linear"
    state_names = ("activation", "muscle length", "muscle velocity", "force")

    has_force_partials = True

    def rows(self, a: Tensor, l_mt: Tensor, v_mt: Tensor, l_m: Tensor | None = None) -> tuple[Tensor, ...]:
        return a, l_mt, v_mt, a * self.max_isometric_force

    def force_partials(self, a: Tensor, l_mt: Tensor, v_mt: Tensor
                       ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        return a * self.max_isometric_force, self.max_isometric_force.expand_as(a), None, None

    def fibre_state(self, a: Tensor, l_mt: Tensor, v_mt: Tensor, l_m: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return l_mt, v_mt


class _HillMuscle(Muscle):
    """Shared parameters of the Hill-type models (all lengths in m, velocities in m/s)."""

    per_muscle = (
        "max_isometric_force",
        "tendon_slack_length",
        "optimal_fibre_length",
        "passive_slack_length",
        "max_velocity",
    )
    required = ("max_isometric_force", "tendon_slack_length", "optimal_fibre_length")
    properties = ("normalized_slack_length",)
    default_normalized_slack: ClassVar[float] = 1.4
    # lengths (m) and the maximum velocity (m/s) divide the equations: at least 0.1 mm (m/s), below any muscle
    arg_constraints = {**Muscle.arg_constraints, **dict.fromkeys(
        ("tendon_slack_length", "optimal_fibre_length", "passive_slack_length", "max_velocity"),
        constraints.greater_than_eq(1e-4))}

    def _derive(self, values: dict[str, Any]) -> dict[str, Any]:
        l0_ce = torch.as_tensor(values["optimal_fibre_length"], dtype=torch.float64)
        if "passive_slack_length" in values and "normalized_slack_length" in values:
            raise TypeError("give either passive_slack_length (m) or normalized_slack_length, not both")
        ns = torch.as_tensor(values.get("normalized_slack_length", self.default_normalized_slack), dtype=torch.float64)
        values.setdefault("passive_slack_length", ns * l0_ce)
        values.setdefault("max_velocity", 10.0 * l0_ce)
        return values

    def proprioception_scale(self) -> tuple[Tensor, Tensor]:
        return self.optimal_fibre_length, self.max_velocity

    min_fibre_length: ClassVar[float] = 0.001  # m: rigid-tendon fibre length floor (Kistemaker: 0)

    def fibre_state(self, a: Tensor, l_mt: Tensor, v_mt: Tensor, l_m: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.compliant:
            return super().fibre_state(a, l_mt, v_mt, l_m)
        return (l_mt - self.tendon_slack_length).clamp_min(self.min_fibre_length), v_mt


def _kistemaker_terms(a: Tensor, ln: Tensor, flce: Tensor, k: SimpleNamespace, reduce_below: bool = False
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Contraction-dynamics terms of Kistemaker et al. (2010) (after Van Soest & Bobbert 1993), (B, M) each:

    a_rel a, with a_rel = 0.41, times the force-length factor above optimal length (below it when
    `reduce_below`, MotorNet 0.3.0's compliant muscle);
    fa = a flce, the isometric active force, and fa b_rel;
    b_rel = 5.2, reduced below activation 0.3 as 5.2 (1 - 0.9 (a - 0.3) / (0.005 - 0.3))^2;
    p1 = fa / (4 d0 - 2 s), d0 = a (flce + a_rel) / b_rel: pole of the lengthening branch
        F = (p1 (fa + s vn) + vn (1.5 fa + s vn)) / (p1 + vn), which meets the shortening branch
        F = (vn a a_rel + fa b_rel) / (b_rel - vn) at vn = 0 with the same value fa.
    """
    fa = a * flce
    aa = torch.where(ln < k.one if reduce_below else ln > k.one, fa, a) * k.a_rel
    b_rel = _square(torch.add(k.br0, a.clamp_max(_Q_CRIT), alpha=_BR1))
    fb = fa * b_rel
    p1 = fb / torch.sub((fa + aa) * k.four, b_rel, alpha=2.0 * _S_AS)
    return aa, fa, fb, b_rel, p1


def _kistemaker_branches(vn: Tensor, aa: Tensor, fa: Tensor, fb: Tensor, b_rel: Tensor, p1: Tensor, k: SimpleNamespace
                         ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Normalised active force (B, M) before its clamp at zero: the shortening branch where vn < 0, else the
    lengthening one; with vs = min(vn, 0), vl = max(vn, 0) and w = s_as vl. Each branch sees only its own side
    of vn = 0, so the unused branch never divides by ~0 (NaN gradients)."""
    vs = vn.clamp_max(0.0)
    vl = vn.clamp_min(0.0)
    shortening = torch.addcmul(fb, vs, aa) / (b_rel - vs)
    w = vl * k.s_as
    lengthening = torch.addcmul(p1 * (fa + w), vl, torch.add(w, fa, alpha=1.5)) / (p1 + vl)
    return torch.where(vn < k.zero, shortening, lengthening), vs, vl, w


class KistemakerMuscle(_HillMuscle):
    """Rigid-tendon Hill muscle of Kistemaker et al. (2010).

    Fibre length l_m = max(l_mt - l0_se, 0), fibre velocity = v_mt. Rows: activation, fibre length (m),
    fibre velocity (m/s), passive force-length, active force-length, normalised active force (activation,
    force-length and force-velocity together), force (N).
    """

    kind = "kistemaker"
    has_force_partials = True
    state_names = ("activation", "muscle length", "muscle velocity", "force-length PE", "force-length CE",
                   "force-velocity CE", "force")
    per_muscle = (*_HillMuscle.per_muscle, "passive_stiffness")
    default_activation = {"min_activation": 0.001, "tau_activation": 0.015, "tau_deactivation": 0.05}
    # its force-velocity curve divides by the activation: a muscle that can rest at 0 gives NaN forces
    arg_constraints = {**_HillMuscle.arg_constraints, "min_activation": constraints.positive}
    min_fibre_length = 0.0

    def _derive(self, values: dict[str, Any]) -> dict[str, Any]:
        values = super()._derive(values)
        if "passive_stiffness" not in values:
            ratio = torch.as_tensor(values["passive_slack_length"], dtype=torch.float64) / torch.as_tensor(
                values["optimal_fibre_length"], dtype=torch.float64)
            values["passive_stiffness"] = 1.0 / (1.66 - ratio) ** 2
        return values

    def force_length(self, l_m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised fibre length, passive force-length k_pe max((l_m - l0_pe) / l0_ce, 0)^2 and the
        parabolic active force-length max(1 - (ln - 1)^2 / 0.66^2, 0.01), each (B, M)."""
        ln = l_m / self.optimal_fibre_length
        flpe = self.passive_stiffness * _square(((l_m - self.passive_slack_length) / self.optimal_fibre_length)
                                                .clamp_min(0.0))
        d = ln - self._k.one
        flce = torch.addcmul(self._k.one, d, d, value=-1.0 / _FL_WIDTH_SQ).clamp_min(_FL_MIN)
        return ln, flpe, flce

    def rows(self, a: Tensor, l_mt: Tensor, v_mt: Tensor, l_m: Tensor | None = None) -> tuple[Tensor, ...]:
        l_m = (l_mt - self.tendon_slack_length).clamp_min(0.0)
        vn = v_mt / self.max_velocity
        ln, flpe, flce = self.force_length(l_m)
        k = self._k
        aa, fa, fb, b_rel, p1 = _kistemaker_terms(a, ln, flce, k)
        active = _kistemaker_branches(vn, aa, fa, fb, b_rel, p1, k)[0].clamp_min(0.0)
        force = (active + flpe) * self.max_isometric_force
        return a, l_m, v_mt, flpe, flce, active, force

    def force_partials(self, a: Tensor, l_mt: Tensor, v_mt: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Force (N) and its partial derivatives d/da (N), d/dl_mt (N/m), d/dv_mt (N s/m), each (B, M).

        The chain rule through `rows`, written out: d(force-length)/d ln, d(b_rel)/da and the quotient rule on
        each force-velocity branch. Used by the fused step's adjoint (`mn_gym.core.adjoint`)."""
        k = self._k
        stretch = l_mt - self.tendon_slack_length
        l_m = stretch.clamp_min(0.0)
        vn = v_mt / self.max_velocity
        ln, flpe, flce = self.force_length(l_m)
        aa, fa, fb, b_rel, p1 = _kistemaker_terms(a, ln, flce, k)
        act, vs, vl, w = _kistemaker_branches(vn, aa, fa, fb, b_rel, p1, k)
        # d/da and d/dln of the terms (suffix _a, _n); a_rel a switches to a_rel fa above optimal length
        flce_n = torch.where(flce > _FL_MIN, (ln - k.one) * k.fl_slope, k.zero)
        fa_n = a * flce_n
        above = ln > k.one
        aa_a = torch.where(above, flce, k.one) * k.a_rel
        aa_n = torch.where(above, fa_n, k.zero) * k.a_rel
        b_a = torch.where(a <= _Q_CRIT, torch.add(k.br0, a.clamp_max(_Q_CRIT), alpha=_BR1) * k.two_br1, k.zero)
        fb_a = torch.addcmul(flce * b_rel, fa, b_a)
        fb_n = fa_n * b_rel
        den = torch.sub((fa + aa) * k.four, b_rel, alpha=2.0 * _S_AS)  # p1 = fb / den
        p1_a = (fb_a - p1 * torch.sub((flce + aa_a) * k.four, b_a, alpha=2.0 * _S_AS)) / den
        p1_n = (fb_n - p1 * (fa_n + aa_n) * k.four) / den
        shortening = vn < k.zero
        # shortening branch S = (fb + vs aa) / (b_rel - vs); lengthening L = (p1 (fa + w) + vl (w + 1.5 fa)) / (p1 + vl)
        s_den = b_rel - vs
        l_den = p1 + vl
        fa_w = fa + w
        p1_vl = torch.add(p1, vl, alpha=1.5)
        act_a = torch.where(shortening, (torch.addcmul(fb_a, vs, aa_a) - act * b_a) / s_den,
                            (torch.addcmul(p1_a * fa_w, p1_vl, flce) - act * p1_a) / l_den)
        act_n = torch.where(shortening, torch.addcmul(fb_n, vs, aa_n) / s_den,
                            (torch.addcmul(p1_n * fa_w, p1_vl, fa_n) - act * p1_n) / l_den)
        # dL/dvl = (s p1 + w + 1.5 fa + s vl - L) / (p1 + vl)
        act_v = torch.where(shortening, (aa + act) / s_den,
                            (torch.add(torch.add(fa_w, fa, alpha=0.5), l_den, alpha=_S_AS) - act) / l_den)
        on = act >= k.zero  # the clamp at zero force
        e = ((l_m - self.passive_slack_length) / self.optimal_fibre_length).clamp_min(0.0)
        stretched = stretch >= k.zero
        active_n = torch.where(on, act_n, k.zero)
        force_l = torch.where(stretched, torch.addcmul(active_n, e, self._passive_slope), k.zero) * self._force_per_ln
        force_v = torch.where(on, act_v, k.zero) * self._force_per_vn
        return (act.clamp_min(0.0) + flpe) * self.max_isometric_force, torch.where(on, act_a, k.zero) * \
            self.max_isometric_force, force_l, force_v

    def _refresh(self) -> None:
        super()._refresh()
        # d force / d l_mt = (d active / d ln + 2 k_pe e) Fmax / l0_ce; d force / d v_mt = d active / d vn Fmax / vmax
        self._passive_slope = 2.0 * self.passive_stiffness
        self._force_per_ln = self.max_isometric_force / self.optimal_fibre_length
        self._force_per_vn = self.max_isometric_force / self.max_velocity


class ThelenMuscle(_HillMuscle):
    """Rigid-tendon muscle of Thelen (2003): Gaussian active force-length, exponential passive force.

    Fibre length l_m = max(l_mt - l0_se, 1 mm). Rows: activation, fibre length (m), fibre velocity (m/s),
    passive force-length, active force-length, force-velocity factor, force (N).
    """

    kind = "thelen"
    state_names = KistemakerMuscle.state_names
    default_activation = KistemakerMuscle.default_activation
    default_normalized_slack = 1.0
    # Thelen (2003) shape constants, per model: Gaussian FL width gamma, passive exponent k_PE / eps0 and
    # its normaliser exp(k_PE) - 1, force-velocity shape A_f and maximum lengthening force F_len.
    constants: ClassVar[dict[str, float]] = {"fl_width": _TH_GAMMA, "pe_exponent": _TH_KPE / _TH_EPS0,
                                             "pe_normaliser": math.expm1(_TH_KPE), "af": _TH_AF, "flen": _TH_FLEN}
    arg_constraints = {**_HillMuscle.arg_constraints, **dict.fromkeys(constants, constraints.positive)}

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        return {**super().tensor_shapes(), **{name: () for name in self.constants}}

    def _derive(self, values: dict[str, Any]) -> dict[str, Any]:
        for name, value in self.constants.items():
            values.setdefault(name, value)
        return super()._derive(values)

    def rows(self, a: Tensor, l_mt: Tensor, v_mt: Tensor, l_m: Tensor | None = None) -> tuple[Tensor, ...]:
        l0_ce = self.optimal_fibre_length
        l_m = (l_mt - self.tendon_slack_length).clamp_min(0.001)
        vn = v_mt / self.max_velocity
        af, flen = self.af, self.flen
        flce = torch.exp(-_square(l_m / l0_ce - 1.0) / self.fl_width)
        flpe = ((torch.exp(self.pe_exponent * (l_m - self.passive_slack_length) / l0_ce) - 1.0)
                / self.pe_normaliser).clamp_min(0.0)
        base = af * (3.0 * a + 1.0)
        vs = vn.clamp_max(0.0)
        vl = vn.clamp_min(0.0)
        shortening = (base + 4.0 * af * vs) / (base - 4.0 * vs)
        c = (flen - 1.0) * base
        lengthening = (c + 8.0 * (af + 1.0) * flen * vl) / (c + 8.0 * (af + 1.0) * vl)
        fv = torch.where(vn <= 0.0, shortening, lengthening).clamp_min(0.0)
        force = (a * flce * fv + flpe) * self.max_isometric_force
        return a, l_m, v_mt, flpe, flce, fv, force


def _mujoco_bump(x: Tensor, lo: Tensor | float, mid: Tensor | float, hi: Tensor | float) -> Tensor:
    """MuJoCo's piecewise-quadratic bump: 0 outside (lo, hi), 1 at mid, knots at the half points."""
    left = 0.5 * (lo + mid)
    right = 0.5 * (mid + hi)
    y = torch.where(
        x <= left,
        0.5 * ((x - lo) / (left - lo)) ** 2,
        torch.where(
            x <= mid,
            1.0 - 0.5 * ((mid - x) / (mid - left)) ** 2,
            torch.where(x <= right, 1.0 - 0.5 * ((x - mid) / (right - mid)) ** 2,
                        0.5 * ((hi - x) / (hi - right)) ** 2),
        ),
    )
    return torch.where((x <= lo) | (x >= hi), torch.zeros_like(y), y)


class MujocoMuscle(_HillMuscle):
    """Rigid-tendon muscle with MuJoCo's force-length, force-velocity and passive curves.

    `max_velocity` is in m/s: the normalised velocity is v_mt / max_velocity (as in MotorNet 0.3.0). MuJoCo
    itself divides by (optimal length x vmax), so MuJoCo's `vmax` corresponds to max_velocity / L0 here.
    `fpmax` is the passive force at length `lmax`, in units of Fmax (MotorNet names it
    `normalized_slack_muscle_length`, default 1.3). Rows as `ThelenMuscle`.
    """

    kind = "mujoco"
    state_names = KistemakerMuscle.state_names
    per_muscle = ("max_isometric_force", "tendon_slack_length", "optimal_fibre_length", "max_velocity", "lmin",
                  "lmax", "fvmax", "fpmax", "passive_scale", "passive_knee", "fv_knee", "fl_mid_low")
    properties = ()
    default_activation = {"min_activation": 0.0, "tau_activation": 0.01, "tau_deactivation": 0.04}
    defaults: ClassVar[dict[str, float]] = {"max_velocity": 1.5, "lmin": 0.5, "lmax": 1.6, "fvmax": 1.2,
                                            "fpmax": 1.3, "passive_scale": 1.0}
    arg_constraints = {**_HillMuscle.arg_constraints, "lmin": constraints.positive,
                       "lmax": constraints.greater_than(1.0), "fvmax": constraints.greater_than(1.0),
                       "fpmax": constraints.nonnegative, "passive_scale": constraints.nonnegative,
                       "passive_knee": constraints.greater_than(1.0), "fv_knee": constraints.positive,
                       "fl_mid_low": constraints.positive}

    def _check_relations(self) -> None:
        """MuJoCo's curves need lmin < 1 < lmax, and the passive curve's knee inside (1, lmax)."""
        if not bool((self.lmin < 1.0).all()):
            raise ValueError(f"MujocoMuscle: lmin must be < 1 (and lmax > 1), got lmin {self.lmin.tolist()}")
        if not bool((self.passive_knee < self.lmax).all()):
            raise ValueError(f"MujocoMuscle: passive_knee must lie in (1, lmax), got {self.passive_knee.tolist()} "
                             f"with lmax {self.lmax.tolist()}")

    def _derive(self, values: dict[str, Any]) -> dict[str, Any]:
        """Derived curve knots (kept as parameters): passive_knee = (1 + lmax) / 2, where the passive curve
        turns linear; fv_knee = fvmax - 1; fl_mid_low = (lmin + 0.95) / 2, peak of the low FL bump."""
        for name, value in self.defaults.items():
            values.setdefault(name, value)
        f64 = torch.float64
        values.setdefault("passive_knee", 0.5 * (1.0 + torch.as_tensor(values["lmax"], dtype=f64)))
        values.setdefault("fv_knee", torch.as_tensor(values["fvmax"], dtype=f64) - 1.0)
        values.setdefault("fl_mid_low", 0.5 * (torch.as_tensor(values["lmin"], dtype=f64) + 0.95))
        return values

    def rows(self, a: Tensor, l_mt: Tensor, v_mt: Tensor, l_m: Tensor | None = None) -> tuple[Tensor, ...]:
        l_m = (l_mt - self.tendon_slack_length).clamp_min(0.001)
        length = l_m / self.optimal_fibre_length
        v = v_mt / self.max_velocity
        b = self.passive_knee
        cubic = 0.25 * self.fpmax * ((length - 1.0) / (b - 1.0)).clamp_min(0.0) ** 3
        linear = 0.25 * self.fpmax * (1.0 + 3.0 * (length - b) / (b - 1.0))
        passive = torch.where(length <= b, cubic, linear)
        fl = _mujoco_bump(length, self.lmin, 1.0, self.lmax) + 0.15 * _mujoco_bump(
            length, self.lmin, self.fl_mid_low, 0.95)
        c = self.fv_knee
        fv = torch.where(
            v <= 0.0,
            (v.clamp_min(-1.0) + 1.0) ** 2,
            torch.where(v <= c, self.fvmax - (c - v.clamp_max(c)) ** 2 / c, self.fvmax.expand_as(v)),
        )
        force = (a * fl * fv + self.passive_scale * passive) * self.max_isometric_force
        return a, l_m, v_mt, passive, fl, fv, force


class CompliantKistemakerMuscle(KistemakerMuscle):
    """Kistemaker et al. (2010) Hill muscle in series with an elastic tendon; fibre length is a state.

    Tendon force-length: 625 (strain)^2, capped at 1 (x Fmax). The contractile element carries the tendon
    force minus the passive fibre force; inverting the force-velocity curve of `KistemakerMuscle` gives the
    normalised fibre velocity vn, and d(fibre length)/dt = vn * max_velocity (m/s).

    Differs from MotorNet 0.3.0 by design: MotorNet advances the fibre length by vn * l0_ce per second while
    reporting vn * max_velocity (10x faster) as the fibre velocity, and it reduces a_rel below optimal length
    (its rigid model, and Van Soest & Bobbert 1993, reduce it above); `MotorNetCompliantKistemakerMuscle`
    reproduces it. Rows: activation, fibre length (m), fibre velocity (m/s), passive force-length, tendon
    force-length, active force (x Fmax), force (N).
    """

    kind = "compliant_kistemaker"
    compliant = True
    has_force_partials = False
    state_names = ("activation", "muscle length", "muscle velocity", "force-length PE", "force-length SE",
                   "active force", "force")
    default_activation = {"min_activation": 0.01, "tau_activation": 0.015, "tau_deactivation": 0.05}
    def rows(self, a: Tensor, l_mt: Tensor, v_mt: Tensor, l_m: Tensor | None = None) -> tuple[Tensor, ...]:
        if l_m is None:
            raise ValueError("the compliant muscle needs its fibre length l_m")
        ln, flpe, flce = self.force_length(l_m)
        flse, active, vn = self._contraction(a, l_mt, l_m, ln, flpe, flce)
        return a, l_m, vn * self.max_velocity, flpe, flse, active, flse * self.max_isometric_force

    def _contraction(self, a: Tensor, l_mt: Tensor, l_m: Tensor, ln: Tensor, flpe: Tensor, flce: Tensor
                     ) -> tuple[Tensor, Tensor, Tensor]:
        """Tendon force-length, active force (x Fmax) and normalised fibre velocity vn, (B, M) each."""
        l0_se = self.tendon_slack_length
        strain = ((l_mt - l_m - l0_se) / l0_se).clamp_min(0.0)
        flse = (_K_SE * strain * strain).clamp_max(1.0)
        active = (flse - flpe).clamp_min(0.0)
        return flse, active, self._fibre_velocity(a, ln, flce, active)

    def _fibre_velocity(self, a: Tensor, ln: Tensor, flce: Tensor, active: Tensor) -> Tensor:
        """Normalised fibre velocity vn (B, M) at which the contractile element carries `active` (x Fmax):
        the force-velocity curve of `KistemakerMuscle` inverted."""
        aa, fa, _, b_rel, p1 = _kistemaker_terms(a, ln, flce, self._k, reduce_below=self.motornet_compatible)
        shortening = b_rel * (active - fa) / (active + aa)
        # Invert the lengthening branch: s vn^2 + (s p1 + 1.5 fa - active) vn + p1 (fa - active) = 0.
        lin = _S_AS * p1 + 1.5 * fa - active
        disc = (lin * lin - 4.0 * _S_AS * p1 * (fa - active)).clamp_min(1e-30)
        lengthening = (torch.sqrt(disc) - lin) / (2.0 * _S_AS)
        return torch.where(active < fa, shortening, lengthening)

    def fibre_length_rate(self, velocity: Tensor) -> Tensor:
        """d(fibre length)/dt (m/s), (B, M), for the reported fibre velocity row (m/s): the same here."""
        return velocity

    def initial_fibre_length(self, l_mt: Tensor) -> Tensor:
        """Fibre length (B, M) at which tendon force equals passive fibre force (zero activation).

        Where the musculotendon is too short to stretch the passive element, the tendon is slack and the
        fibre takes the whole length (at least 0.1 % of optimal length).
        """
        l0_ce = self.optimal_fibre_length
        l0_se = self.tendon_slack_length
        l0_pe = self.passive_slack_length
        root_k = torch.sqrt(self.passive_stiffness)
        stretched = ((_SQRT_K_SE * (l_mt - l0_se) / l0_se + root_k * l0_pe / l0_ce)
                     / (_SQRT_K_SE / l0_se + root_k / l0_ce))
        slack = torch.maximum(l_mt - l0_se, 0.001 * l0_ce)
        return torch.where(l_mt < l0_se + l0_pe, slack, stretched)


class MotorNetCompliantKistemakerMuscle(CompliantKistemakerMuscle):
    """MotorNet 0.3.0's compliant-tendon muscle, reproduced for parity (not the physics; see the parent).

    As `CompliantKistemakerMuscle` except, as MotorNet does (model.md 1.7): a_rel is reduced by the
    force-length factor below optimal length instead of above; the fibre length moves at vn * l0_ce per second
    while the reported fibre velocity is vn * max_velocity (10x the length's rate at max_velocity = 10 l0_ce);
    the reported velocity is the one the last step integrated (`EffectorState.fibre_velocity`); and the
    initial state takes one step of the effector's dt from the passive equilibrium, with the passive force
    capped at 1 in that step. Use it to reproduce numbers published with MotorNet's compliant arm.
    """

    kind = "compliant_kistemaker_motornet"
    motornet_compatible = True

    def fibre_length_rate(self, velocity: Tensor) -> Tensor:
        """d(fibre length)/dt (m/s): the reported velocity times l0_ce / max_velocity (MotorNet's rate)."""
        return velocity * (self.optimal_fibre_length / self.max_velocity)

    def reported_velocity(self, rate: Tensor) -> Tensor:
        """The fibre velocity (m/s) MotorNet reports for a fibre-length rate (m/s): rate x max_velocity / l0_ce."""
        return rate * (self.max_velocity / self.optimal_fibre_length)

    def initial_fibre_state(self, l_eq: Tensor, l_mt: Tensor, dt: float) -> tuple[Tensor, Tensor]:
        """Fibre length (m) and reported velocity (m/s), (B, M) each, after MotorNet's initial step: from the
        passive equilibrium `l_eq` at min activation, one step of `dt` (s) with the passive force capped at 1."""
        a = torch.full_like(l_eq, float(self.min_activation))
        ln, flpe, flce = self.force_length(l_eq)
        vn = self._contraction(a, l_mt, l_eq, ln, flpe.clamp_max(1.0), flce)[2]
        velocity = vn * self.max_velocity
        return l_eq + dt * self.fibre_length_rate(velocity), velocity

    def motornet_rows(self, a: Tensor, l_mt: Tensor, l_m: Tensor, force_l_m: Tensor, velocity: Tensor
                      ) -> tuple[Tensor, ...]:
        """MotorNet's stored rows, (B, M) each: activation, the fibre length `l_m` (m), the reported `velocity`
        (m/s), then the passive, tendon and active forces of the previous step's fibre length `force_l_m` (m)
        on the stored path `l_mt` (m), and the force (N)."""
        ln, flpe, flce = self.force_length(force_l_m)
        flse, active, _ = self._contraction(a, l_mt, force_l_m, ln, flpe, flce)
        return a, l_m, velocity, flpe, flse, active, flse * self.max_isometric_force

    def motornet_length_rate(self, a: Tensor, l_m: Tensor, active: Tensor) -> Tensor:
        """d(fibre length)/dt (m/s), (B, M), MotorNet's: vn l0_ce, vn from activation `a`, the force-length
        factor of the current fibre length `l_m` (m) and the stored active force `active` (x Fmax)."""
        ln, _, flce = self.force_length(l_m)
        return self._fibre_velocity(a, ln, flce, active) * self.optimal_fibre_length


MUSCLES: dict[str, type[Muscle]] = {
    cls.kind: cls for cls in (LinearMuscle, KistemakerMuscle, ThelenMuscle, MujocoMuscle, CompliantKistemakerMuscle,
                               MotorNetCompliantKistemakerMuscle)
}


def muscle_class(name: str) -> type[Muscle]:
    """The muscle model registered under `name` (see `MUSCLES`)."""
    try:
        return MUSCLES[name]
    except KeyError:
        raise ValueError(f"unknown muscle model {name!r}; known: {sorted(MUSCLES)}") from None
