"""Skeletons: rigid-body dynamics of a planar point mass, a planar two-link arm and a one-joint elbow, batched.

Shapes: joint positions `q` and velocities `qd` are (B, dof); generalised forces (B, dof); endpoint forces
(B, 2) in the world frame (N). Body-fixed points for muscle paths: `point_kinematics` gives their world
positions (B, P, 2) and position Jacobians (B, P, 2, dof).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.distributions import constraints

from mn_gym.core.params import Component, FloatLike

_TWO_DOF_ARM_UPPER = (math.radians(140), math.radians(160))  # MotorNet's TwoDofArm: shoulder, elbow (rad)
_ELBOW_UPPER = math.radians(150)  # full flexion of the one-joint elbow (rad)


class Skeleton(Component):
    """Base: joint bounds plus the dynamics interface."""

    kind = "skeleton"
    dof: ClassVar[int] = 2
    n_bodies: ClassVar[int] = 2  # body 0 is the world
    bound_names = ("pos_lower", "pos_upper", "vel_lower", "vel_upper")
    constant_point_jacobian: ClassVar[bool] = False  # body-fixed points' Jacobians do not depend on q

    def _bound_shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: (self.dof,) for name in self.bound_names}

    def _refresh(self) -> None:
        self._zero = torch.zeros((), dtype=self.pos_lower.dtype, device=self.pos_lower.device)

    def _check_relations(self) -> None:
        if not bool((self.pos_lower < self.pos_upper).all()):
            raise ValueError(f"joint bounds must satisfy pos_lower < pos_upper, got {self.pos_lower.tolist()} "
                             f"and {self.pos_upper.tolist()}")
        if not bool((self.vel_lower < self.vel_upper).all()):
            raise ValueError("joint velocity bounds must satisfy vel_lower < vel_upper")

    @classmethod
    def from_config(cls, cfg: dict[str, Any], *, dtype: torch.dtype = torch.float32, device: Any = None) -> Skeleton:
        return cls(dtype=dtype, device=device, **cfg["params"])

    def acceleration(self, q: Tensor, qd: Tensor, tau: Tensor, endpoint_force: Tensor | None) -> Tensor:
        """Joint accelerations (B, dof) under generalised force `tau` and an endpoint force (world frame)."""
        raise NotImplementedError

    def acceleration_vjp(self, q: Tensor, qd: Tensor, endpoint_force: Tensor | None, qdd: Tensor, g_qdd: Tensor
                         ) -> tuple[Tensor | None, Tensor | None, Tensor, Tensor | None]:
        """Gradients of <g_qdd, acceleration(q, qd, tau, endpoint_force)> w.r.t. q, qd, tau and endpoint_force
        (None: zero), given the accelerations `qdd` (B, dof) computed there."""
        raise NotImplementedError

    def endpoint(self, q: Tensor, qd: Tensor) -> Tensor:
        """Endpoint position and velocity [x, y, vx, vy], (B, 4) in m and m/s."""
        raise NotImplementedError

    def point_kinematics(self, q: Tensor, body: Tensor, local: Tensor) -> tuple[Tensor, Tensor]:
        """World positions (B, P, 2) and Jacobians d position / d q (B, P, 2, dof) of body-fixed points.

        `body` (P,) holds each point's body index (0 = world); `local` (P, 2) its coordinates in that body.
        """
        raise NotImplementedError

    def limit(self, q: Tensor, qd: Tensor) -> tuple[Tensor, Tensor]:
        """Hard joint limits: clip velocities to their bounds, stop motion pushing past a position bound,
        then clamp positions (as MotorNet 0.3.0). Gradients are zero through an active limit."""
        qd = torch.clamp(qd, self.vel_lower, self.vel_upper)
        # How far past the bound the joint moves towards (>= 0: at or past it, moving outward; zeroing a zero
        # velocity changes nothing, so qd = 0 may take either branch).
        zero = self._zero
        excess = torch.where(qd > zero, q - self.pos_upper, self.pos_lower - q)
        return torch.clamp(q, self.pos_lower, self.pos_upper), torch.where(excess >= zero, zero, qd)

    def limit_vjp(self, q: Tensor, qd: Tensor, g_q: Tensor, g_qd: Tensor) -> tuple[Tensor, Tensor]:
        """Gradients w.r.t. the q, qd given to `limit`, of <g_q, q_limited> + <g_qd, qd_limited>: zero where
        a limit is active (the clamps pass a gradient at their bounds, as torch.clamp does)."""
        lo, hi = self.vel_lower, self.vel_upper
        clipped = torch.clamp(qd, lo, hi)
        free = torch.where(clipped > self._zero, q < self.pos_upper, q > self.pos_lower)
        free = free & (qd >= lo) & (qd <= hi)
        inside = (q >= self.pos_lower) & (q <= self.pos_upper)
        return g_q * inside, g_qd * free

    def kinetic_energy(self, q: Tensor, qd: Tensor) -> Tensor:
        """Kinetic energy (B,) in J."""
        raise NotImplementedError

    def potential_energy(self, q: Tensor) -> Tensor:
        """Gravitational potential energy (B,) in J (zero for a horizontal plane)."""
        return torch.zeros(q.shape[0], dtype=q.dtype, device=q.device)


class PointMass(Skeleton):
    """A point of mass `mass` (kg) moving in the plane; its 'joints' are its x and y position (m).

    Dynamics: m qdd = tau + F_endpoint (Newton). Body 1 is the mass itself. Default bounds +-1 m, +-1000 m/s.
    """

    kind = "point_mass"
    arg_constraints = {"mass": constraints.positive}

    def __init__(
        self,
        mass: FloatLike = 1.0,
        pos_lower: FloatLike = -1.0,
        pos_upper: FloatLike = 1.0,
        vel_lower: FloatLike = -1000.0,
        vel_upper: FloatLike = 1000.0,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        self._set_tensors(dict(mass=mass, pos_lower=pos_lower, pos_upper=pos_upper, vel_lower=vel_lower,
                               vel_upper=vel_upper), dtype, device)

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"mass": (), **self._bound_shapes()}

    def acceleration(self, q: Tensor, qd: Tensor, tau: Tensor, endpoint_force: Tensor | None) -> Tensor:
        if endpoint_force is not None:
            tau = tau + endpoint_force
        return tau / self.mass

    constant_point_jacobian = True

    def acceleration_vjp(self, q: Tensor, qd: Tensor, endpoint_force: Tensor | None, qdd: Tensor, g_qdd: Tensor
                         ) -> tuple[Tensor | None, Tensor | None, Tensor, Tensor | None]:
        w = g_qdd / self.mass
        return None, None, w, None if endpoint_force is None else w

    def endpoint(self, q: Tensor, qd: Tensor) -> Tensor:
        return torch.cat((q, qd), dim=-1)

    def point_kinematics(self, q: Tensor, body: Tensor, local: Tensor) -> tuple[Tensor, Tensor]:
        cache = self._kinematics_cache
        if cache is None or cache[0] is not body or cache[1].dtype != q.dtype:
            on_mass = (body == 1).to(q.dtype)  # (P,)
            jac = on_mass[:, None, None] * torch.eye(2, dtype=q.dtype, device=q.device)  # (P, 2, 2): constant
            cache = self._kinematics_cache = (body, jac, jac.permute(2, 0, 1).reshape(2, -1))
        _, jac, select = cache
        # Positions as one matrix product, (B, 2) @ (2, 2P): broadcasting q over points is far slower.
        pos = torch.addmm(local.reshape(-1), q, select).view(q.shape[0], -1, 2)
        return pos, jac.expand(q.shape[0], -1, -1, -1)

    def _refresh(self) -> None:
        super()._refresh()
        self._kinematics_cache: tuple[Tensor, Tensor, Tensor] | None = None

    def kinetic_energy(self, q: Tensor, qd: Tensor) -> Tensor:
        return 0.5 * self.mass * (qd * qd).sum(-1)


class TwoLinkArm(Skeleton):
    """Planar two-link arm (shoulder, elbow), angles in rad, after Nijhof & Kouwenhoven (2000).

    Equations of motion: M(q) qdd + C(q, qd) + G(q) = tau + J(q)^T F_endpoint, with
        M = inertia_const + inertia_cos cos(q2),
        C = coriolis sin(q2) [-(2 qd1 + qd2) qd2, qd1^2] + viscosity qd,
        G = gravity [cos q1, cos(q1 + q2)] (zero unless the arm moves in a vertical plane).
    The stored tensors are these coefficients, computed by `from_segments` from segment masses, lengths,
    centre-of-mass distances and inertias, so a configuration rebuilds exactly.
    """

    kind = "two_link_arm"
    arg_constraints = {"l1": constraints.positive, "l2": constraints.positive, "viscosity": constraints.nonnegative}
    n_bodies = 3

    def __init__(
        self,
        l1: FloatLike,
        l2: FloatLike,
        inertia_const: FloatLike,
        inertia_cos: FloatLike,
        coriolis: FloatLike,
        viscosity: FloatLike = 0.0,
        gravity: FloatLike = 0.0,
        pos_lower: FloatLike = 0.0,
        pos_upper: FloatLike = _TWO_DOF_ARM_UPPER,
        vel_lower: FloatLike = -1000.0,
        vel_upper: FloatLike = 1000.0,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        self._set_tensors(dict(l1=l1, l2=l2, inertia_const=inertia_const, inertia_cos=inertia_cos,
                               coriolis=coriolis, viscosity=viscosity, gravity=gravity, pos_lower=pos_lower,
                               pos_upper=pos_upper, vel_lower=vel_lower, vel_upper=vel_upper), dtype, device)

    def _check_relations(self) -> None:
        super()._check_relations()
        for name in ("inertia_const", "inertia_cos"):
            m = getattr(self, name)
            if not bool(m[0, 1] == m[1, 0]):
                raise ValueError(f"{name} must be symmetric, got {m.tolist()}")
        if not bool(self.inertia_cos[1, 1] == 0):
            raise ValueError(f"inertia_cos[1, 1] must be 0 for a two-link arm, got {float(self.inertia_cos[1, 1])}")
        # The Coriolis coefficient is m2 l1 l2g = inertia_cos[0, 1]; it is stored apart only so that a value
        # given at higher precision (MotorNet keeps it in float64, the inertia in float32) is kept as given.
        k = float(self.inertia_cos[0, 1])
        if abs(float(self.coriolis) - k) > 1e-6 * max(abs(k), 1e-12):
            raise ValueError(f"coriolis ({float(self.coriolis)}) must equal inertia_cos[0, 1] ({k}) = m2 l1 l2g, "
                             "or the arm does not conserve energy")
        # M(q) = inertia_const + cos(q2) inertia_cos is linear in c = cos(q2), its determinant concave in c: it is
        # positive definite at every posture iff it is at c = -1 and c = 1
        for c in (-1.0, 1.0):
            m = (self.inertia_const + c * self.inertia_cos).detach().double()
            if not (bool(m[0, 0] > 0) and bool(torch.linalg.det(m) > 0)):
                raise ValueError(f"the mass matrix inertia_const + cos(q2) inertia_cos must be positive definite at "
                                 f"every elbow angle; at cos(q2) = {c:g} it is {m.tolist()}")

    @classmethod
    def from_segments(
        cls,
        m1: float = 1.864572,
        m2: float = 1.534315,
        l1g: float = 0.180496,
        l2g: float = 0.181479,
        i1: float = 0.013193,
        i2: float = 0.020062,
        l1: float = 0.309,
        l2: float = 0.26,
        viscosity: float = 0.0,
        g: float = 0.0,
        **kwargs: Any,
    ) -> TwoLinkArm:
        """Arm from segment properties: masses (kg), lengths and centre-of-mass distances (m), inertias about
        the centres of mass (kg m^2), joint viscosity (N m s/rad) and gravitational acceleration g (m/s^2,
        acting along -y; 0 for a horizontal plane). Defaults: MotorNet's `TwoDofArm`."""
        for name, value in dict(m1=m1, m2=m2, l1g=l1g, l2g=l2g, i1=i1, i2=i2, l1=l1, l2=l2).items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        c22 = m2 * l2g**2 + i2
        const = [[m1 * l1g**2 + i1 + m2 * (l2g**2 + l1**2) + i2, c22], [c22, c22]]
        k = m2 * l1 * l2g
        cos = [[2 * k, k], [k, 0.0]]
        gravity = [(m1 * l1g + m2 * l1) * g, m2 * l2g * g]
        return cls(l1=l1, l2=l2, inertia_const=const, inertia_cos=cos, coriolis=k, viscosity=viscosity,
                   gravity=gravity, **kwargs)

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"l1": (), "l2": (), "inertia_const": (2, 2), "inertia_cos": (2, 2), "coriolis": (),
                "viscosity": (), "gravity": (2,), **self._bound_shapes()}

    def acceleration(self, q: Tensor, qd: Tensor, tau: Tensor, endpoint_force: Tensor | None) -> Tensor:
        if endpoint_force is not None:
            tau = tau + self.jacobian_transpose_times(q, endpoint_force)
        if self._viscous:
            tau = tau - self.viscosity * qd
        if self._gravity_on:
            c1 = torch.cos(q[:, 0])
            c12 = torch.cos(q[:, 0] + q[:, 1])
            tau = tau - torch.stack((self.gravity[0] * c1 + self.gravity[1] * c12, self.gravity[1] * c12), dim=-1)
        qd1, qd2 = qd[:, :1], qd[:, 1:]
        _, s2, solve = self._mass_matrix(q)
        # Coriolis, centripetal: k sin(q2) [(2 qd1 + qd2) qd2, -qd1^2] = k sin(q2) [qd2, qd1] * [2 qd1 + qd2, -qd1]
        rhs = torch.addcmul(tau, self.coriolis * s2, qd.flip(-1) * torch.cat((torch.add(qd2, qd1, alpha=2.0), -qd1), 1))
        return solve(rhs)

    def _mass_matrix(self, q: Tensor) -> tuple[Tensor, Tensor, Callable[[Tensor], Tensor]]:
        """cos(q2), sin(q2) (B, 1) and x -> M(q)^-1 x for x (B, 2), with M = [[m11, m12], [m12, m22]]:
        M^-1 x = [m22 x1 - m12 x2, m11 x2 - m12 x1] / det."""
        q2 = q[:, 1:]  # (B, 1)
        c2, s2 = torch.cos(q2), torch.sin(q2)
        diag = torch.addcmul(self._diag, c2, self._diag_cos)  # (B, 2): [m11, m22]
        m12 = torch.addcmul(self._m12, c2, self._m12_cos)  # (B, 1)
        det = torch.addcmul(diag.prod(-1, keepdim=True), m12, m12, value=-1.0)
        flipped = diag.flip(-1)

        def solve(x: Tensor) -> Tensor:
            return torch.addcmul(x * flipped, m12, x.flip(-1), value=-1.0) / det

        return c2, s2, solve

    def acceleration_vjp(self, q: Tensor, qd: Tensor, endpoint_force: Tensor | None, qdd: Tensor, g_qdd: Tensor
                         ) -> tuple[Tensor | None, Tensor | None, Tensor, Tensor | None]:
        """With w = M^-1 g_qdd (M symmetric): d/d tau = w; the mass matrix M = M_0 + cos(q2) M_cos gives
        d/dq2 -w^T (dM/dq2) qdd = sin(q2) w^T M_cos qdd; the Coriolis, viscous, gravity and J^T F terms their own."""
        q1, q2 = q[:, :1], q[:, 1:]
        qd1, qd2 = qd[:, :1], qd[:, 1:]
        c2, s2, solve = self._mass_matrix(q)
        w = solve(g_qdd)  # (B, 2)
        w1, w2 = w[:, :1], w[:, 1:]
        k = self.coriolis
        mass_term = s2 * (w * torch.addcmul(self._diag_cos * qdd, self._m12_cos, qdd.flip(-1))).sum(-1, keepdim=True)
        # Coriolis: k sin(q2) [qd2 (2 qd1 + qd2), -qd1^2]
        g_q2 = mass_term + (w1 * qd2 * (2.0 * qd1 + qd2) - w2 * qd1 * qd1) * (k * c2)
        ks2 = 2.0 * k * s2
        g_qd = torch.cat((ks2 * (w1 * qd2 - w2 * qd1), ks2 * w1 * (qd1 + qd2)), dim=1)
        g_q1 = torch.zeros_like(g_q2)
        if self._viscous:
            g_qd = g_qd - self.viscosity * w
        if self._gravity_on:
            s1, s12 = torch.sin(q1), torch.sin(q1 + q2)
            g1s12 = self.gravity[1] * s12 * (w1 + w2)
            g_q1 = g_q1 + self.gravity[0] * s1 * w1 + g1s12
            g_q2 = g_q2 + g1s12
        g_force = None
        if endpoint_force is not None:
            fx, fy = endpoint_force[:, :1], endpoint_force[:, 1:]
            q12 = q1 + q2
            s1, c1, s12, c12 = torch.sin(q1), torch.cos(q1), torch.sin(q12), torch.cos(q12)
            w12 = w1 + w2
            g_force = torch.cat((-(self.l1 * s1 * w1 + self.l2 * s12 * w12),
                                 self.l1 * c1 * w1 + self.l2 * c12 * w12), 1)
            fore = -self.l2 * (s12 * fy + c12 * fx) * w12
            g_q1 = g_q1 - self.l1 * (s1 * fy + c1 * fx) * w1 + fore
            g_q2 = g_q2 + fore
        return torch.cat((g_q1, g_q2), dim=1), g_qd, w, g_force

    def jacobian_transpose_times(self, q: Tensor, force: Tensor) -> Tensor:
        """J(q)^T F: joint torques (B, 2) of an endpoint force F (B, 2) in the world frame."""
        q12 = q[:, 0] + q[:, 1]
        s1, c1 = torch.sin(q[:, 0]), torch.cos(q[:, 0])
        fx, fy = force[:, 0], force[:, 1]
        t2 = self.l2 * (torch.cos(q12) * fy - torch.sin(q12) * fx)
        return torch.stack((self.l1 * (c1 * fy - s1 * fx) + t2, t2), dim=-1)

    def _refresh(self) -> None:
        super()._refresh()
        # The mass matrix is symmetric: M = [[m11, m12], [m12, m22]]; cache its entries as views.
        self._diag, self._diag_cos = self.inertia_const.diagonal(), self.inertia_cos.diagonal()
        self._m12, self._m12_cos = self.inertia_const[0, 1:2], self.inertia_cos[0, 1:2]
        self._gravity_on = bool((self.gravity != 0).any())
        self._viscous = bool(self.viscosity != 0)

    def joint_positions(self, q: Tensor) -> Tensor:
        """Shoulder, elbow and hand positions (B, 3, 2) in m."""
        q1 = q[:, 0]
        q12 = q1 + q[:, 1]
        elbow = torch.stack((self.l1 * torch.cos(q1), self.l1 * torch.sin(q1)), dim=-1)
        hand = elbow + torch.stack((self.l2 * torch.cos(q12), self.l2 * torch.sin(q12)), dim=-1)
        return torch.stack((torch.zeros_like(elbow), elbow, hand), dim=1)

    def endpoint(self, q: Tensor, qd: Tensor) -> Tensor:
        q1, q2 = q.unbind(-1)
        qd1, qd2 = qd.unbind(-1)
        c1, s1 = torch.cos(q1), torch.sin(q1)
        c12, s12 = torch.cos(q1 + q2), torch.sin(q1 + q2)
        x = self.l1 * c1 + self.l2 * c12
        y = self.l1 * s1 + self.l2 * s12
        vx = -y * qd1 - self.l2 * s12 * qd2
        vy = x * qd1 + self.l2 * c12 * qd2
        return torch.stack((x, y, vx, vy), dim=-1)

    def point_kinematics(self, q: Tensor, body: Tensor, local: Tensor) -> tuple[Tensor, Tensor]:
        # A point on body b rotates by the sum of the joint angles up to b, about the joint it hangs on;
        # d position / d q_j = [body >= j] * perp(position - joint_j), perp(x, y) = (-y, x).
        on_upper = (body >= 1).to(q.dtype)  # (P,)
        on_fore = (body >= 2).to(q.dtype)
        angle = q[:, None, 0] * on_upper + q[:, None, 1] * on_fore  # (B, P)
        c, s = torch.cos(angle), torch.sin(angle)
        rotated = torch.stack((c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1]), dim=-1)
        elbow = torch.stack((torch.cos(q[:, 0]), torch.sin(q[:, 0])), dim=-1) * self.l1  # (B, 2)
        pos = rotated + on_fore[:, None] * elbow[:, None, :]
        perp_pos = torch.stack((-pos[..., 1], pos[..., 0]), dim=-1)
        perp_rot = torch.stack((-rotated[..., 1], rotated[..., 0]), dim=-1)
        jac = torch.stack((on_upper[:, None] * perp_pos, on_fore[:, None] * perp_rot), dim=-1)
        return pos, jac

    def kinetic_energy(self, q: Tensor, qd: Tensor) -> Tensor:
        m = self.inertia_const + self.inertia_cos * torch.cos(q[:, 1])[:, None, None]
        return 0.5 * torch.einsum("bi,bij,bj->b", qd, m, qd)

    def potential_energy(self, q: Tensor) -> Tensor:
        return self.gravity[0] * torch.sin(q[:, 0]) + self.gravity[1] * torch.sin(q[:, 0] + q[:, 1])


class Elbow(Skeleton):
    """One-joint elbow: a forearm rotating about a fixed elbow in the horizontal plane, angle q in rad.

    Body 1 is the forearm (body 0, the world, holds the upper arm, fixed along -x from the elbow at the
    origin); q = 0 is the arm straight, q > 0 flexion. Dynamics: I qdd = tau - viscosity qd + J(q)^T F_endpoint,
    with I the forearm-and-hand inertia about the elbow (kg m^2), the hand at l (cos q, sin q) m and
    J = l (-sin q, cos q). Defaults: arm26's forearm (Kistemaker et al. 2010), I = m l_g^2 + I_g, elbow 0-150 deg.
    """

    kind = "elbow"
    dof = 1
    n_bodies = 2
    arg_constraints = {"inertia": constraints.positive, "length": constraints.positive,
                       "upper_arm_length": constraints.positive, "viscosity": constraints.nonnegative}

    def __init__(
        self,
        inertia: FloatLike = 1.43 * 0.165**2 + 0.057,
        length: FloatLike = 0.333,
        upper_arm_length: FloatLike = 0.309,
        viscosity: FloatLike = 0.0,
        pos_lower: FloatLike = 0.0,
        pos_upper: FloatLike = _ELBOW_UPPER,
        vel_lower: FloatLike = -1000.0,
        vel_upper: FloatLike = 1000.0,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        self._set_tensors(dict(inertia=inertia, length=length, upper_arm_length=upper_arm_length,
                               viscosity=viscosity, pos_lower=pos_lower, pos_upper=pos_upper, vel_lower=vel_lower,
                               vel_upper=vel_upper), dtype, device)

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"inertia": (), "length": (), "upper_arm_length": (), "viscosity": (), **self._bound_shapes()}

    def _refresh(self) -> None:
        super()._refresh()
        self._viscous = bool(self.viscosity != 0)

    def jacobian_transpose_times(self, q: Tensor, force: Tensor) -> Tensor:
        """J(q)^T F: elbow torque (B, 1) of an endpoint force F (B, 2) in the world frame."""
        return self.length * (torch.cos(q) * force[:, 1:] - torch.sin(q) * force[:, :1])

    def acceleration(self, q: Tensor, qd: Tensor, tau: Tensor, endpoint_force: Tensor | None) -> Tensor:
        if endpoint_force is not None:
            tau = tau + self.jacobian_transpose_times(q, endpoint_force)
        if self._viscous:
            tau = tau - self.viscosity * qd
        return tau / self.inertia

    def acceleration_vjp(self, q: Tensor, qd: Tensor, endpoint_force: Tensor | None, qdd: Tensor, g_qdd: Tensor
                         ) -> tuple[Tensor | None, Tensor | None, Tensor, Tensor | None]:
        w = g_qdd / self.inertia  # (B, 1)
        g_qd = -self.viscosity * w if self._viscous else None
        if endpoint_force is None:
            return None, g_qd, w, None
        c, s = torch.cos(q), torch.sin(q)
        fx, fy = endpoint_force[:, :1], endpoint_force[:, 1:]
        g_q = -self.length * (s * fy + c * fx) * w
        return g_q, g_qd, w, self.length * torch.cat((-s * w, c * w), 1)

    def joint_positions(self, q: Tensor) -> Tensor:
        """Shoulder, elbow and hand positions (B, 3, 2) in m (the shoulder fixed at (-upper_arm_length, 0))."""
        hand = self.length * torch.cat((torch.cos(q), torch.sin(q)), dim=-1)
        shoulder = torch.zeros_like(hand)
        shoulder[:, 0] = -self.upper_arm_length
        return torch.stack((shoulder, torch.zeros_like(hand), hand), dim=1)

    def endpoint(self, q: Tensor, qd: Tensor) -> Tensor:
        x, y = self.length * torch.cos(q), self.length * torch.sin(q)
        return torch.cat((x, y, -y * qd, x * qd), dim=-1)

    def point_kinematics(self, q: Tensor, body: Tensor, local: Tensor) -> tuple[Tensor, Tensor]:
        on_fore = (body >= 1).to(q.dtype)  # (P,)
        angle = q * on_fore  # (B, P)
        c, s = torch.cos(angle), torch.sin(angle)
        pos = torch.stack((c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1]), dim=-1)
        jac = (on_fore[:, None] * torch.stack((-pos[..., 1], pos[..., 0]), dim=-1)).unsqueeze(-1)
        return pos, jac

    def kinetic_energy(self, q: Tensor, qd: Tensor) -> Tensor:
        return 0.5 * self.inertia * qd[:, 0] * qd[:, 0]


SKELETONS: dict[str, type[Skeleton]] = {cls.kind: cls for cls in (PointMass, TwoLinkArm, Elbow)}
