"""Muscle path geometry: musculotendon length, velocity and moment arms from the joint state.

Every geometry maps joint positions and velocities (B, dof) to
    l_mt (B, M) musculotendon length (m), v_mt (B, M) its rate of change (m/s),
    moment_arm (B, dof, M) = -d l_mt / d q (m, or m/rad for rotational joints),
so that a muscle force F (N, pulling) produces the generalised force sum_m F_m moment_arm[:, :, m].
This is the sign of Sherman, Seth & Delp (2013); MotorNet stores +d l_mt / d q and negates it in the torque.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from mn_gym.core.params import Component, FloatLike
from mn_gym.core.skeleton import Skeleton

_MIN_SEGMENT_SQ = 1e-24  # squared length (m^2) below which a path segment counts as 1e-12 m long


class Geometry(Component):
    kind = "geometry"
    settings = ("n_muscles", "dof")

    def check_skeleton(self, skeleton: Skeleton) -> None:
        """Raise if this geometry cannot drive `skeleton`."""
        if self.dof != skeleton.dof:
            raise ValueError(f"geometry has {self.dof} joints but {type(skeleton).__name__} has {skeleton.dof}")

    def __call__(self, skeleton: Skeleton, q: Tensor, qd: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        raise NotImplementedError

    def supports_vjp(self, skeleton: Skeleton) -> bool:
        """Whether `vjp` is implemented for this geometry on `skeleton` (the fused step's adjoint needs it)."""
        return False

    def vjp(self, skeleton: Skeleton, q: Tensor, qd: Tensor, moment_arm: Tensor, g_length: Tensor,
            g_velocity: Tensor, g_moment_arm: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Gradients (B, dof) w.r.t. q and qd (None: zero) of <g_length, l_mt> + <g_velocity, v_mt> +
        <g_moment_arm, moment_arm> at (q, qd), given the `moment_arm` that `__call__` returned there."""
        raise NotImplementedError(f"{type(self).__name__} has no analytic vector-Jacobian product")

    @classmethod
    def from_config(cls, cfg: dict[str, Any], *, dtype: torch.dtype = torch.float32, device: Any = None) -> Geometry:
        settings = {name: cfg[name] for name in cls.settings}
        return cls(**settings, **cfg["params"], dtype=dtype, device=device)


class PolynomialGeometry(Geometry):
    """Musculotendon length as a quadratic polynomial of each joint angle (Kistemaker et al. 2010 arm26).

    With theta = q - offset: l_mt = a0 + sum_j (a1_j theta_j + a2_j theta_j^2), so
    moment_arm_j = -(a1_j + 2 a2_j theta_j) and v_mt = -sum_j moment_arm_j qd_j.
    Shapes: a0 (M,), a1 and a2 (dof, M), offset (dof,).
    """

    kind = "polynomial"

    def __init__(self, n_muscles: int, dof: int, a0: FloatLike, a1: FloatLike, a2: FloatLike,
                 offset: FloatLike = 0.0, *, dtype: torch.dtype = torch.float32, device: Any = None) -> None:
        self.n_muscles, self.dof = n_muscles, dof
        self._set_tensors(dict(a0=a0, a1=a1, a2=a2, offset=offset), dtype, device)

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        m, d = self.n_muscles, self.dof
        return {"a0": (m,), "a1": (d, m), "a2": (d, m), "offset": (d,)}

    def _refresh(self) -> None:
        # Everything is a matrix product with the batch folded into rows (broadcasting (B, dof, 1) against
        # (dof, M) is several times slower on CPU):
        #   [l_mt, v_mt] = [theta, theta^2, qd, qd theta] @ [[a1, 0], [a2, 0], [0, a1], [0, 2 a2]] + [a0, 0]
        #   -moment_arm = a1 + 2 a2 theta = theta @ blockdiag(2 a2) + a1          (flattened to (B, dof M))
        zero = torch.zeros_like(self.a1)
        self._length_velocity = torch.cat((torch.cat((self.a1, zero), 1), torch.cat((self.a2, zero), 1),
                                           torch.cat((zero, self.a1), 1), torch.cat((zero, 2.0 * self.a2), 1)), 0)
        self._length_velocity_bias = torch.cat((self.a0, torch.zeros_like(self.a0)))
        self._arm_slope = torch.block_diag(*(2.0 * self.a2).unbind(0))  # (dof, dof M)
        self._arm_bias = self.a1.reshape(-1)

    def __call__(self, skeleton: Skeleton, q: Tensor, qd: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        theta = q - self.offset  # (B, dof)
        features = torch.cat((theta, theta * theta, qd, qd * theta), dim=1)  # (B, 4 dof)
        lv = torch.addmm(self._length_velocity_bias, features, self._length_velocity)  # (B, 2M)
        m = self.n_muscles
        dl_dq = torch.addmm(self._arm_bias, theta, self._arm_slope).view(-1, self.dof, m)  # (B, dof, M)
        return lv[:, :m], lv[:, m:], -dl_dq

    def supports_vjp(self, skeleton: Skeleton) -> bool:
        return True

    def vjp(self, skeleton: Skeleton, q: Tensor, qd: Tensor, moment_arm: Tensor, g_length: Tensor,
            g_velocity: Tensor, g_moment_arm: Tensor) -> tuple[Tensor | None, Tensor | None]:
        # dl/dq_j = a1_j + 2 a2_j theta_j = -moment_arm_j, v = sum_j dl/dq_j qd_j, d(dl/dq_j)/d theta_j = 2 a2_j
        g_vel = g_velocity.unsqueeze(1)  # (B, 1, M)
        g_arm = torch.addcmul(-g_moment_arm, g_vel, qd.unsqueeze(-1))  # gradient w.r.t. dl/dq, (B, dof, M)
        g_q = (g_arm * (2.0 * self.a2) - g_length.unsqueeze(1) * moment_arm).sum(-1)
        return g_q, -(g_vel * moment_arm).sum(-1)


class ConstantGeometry(Geometry):
    """Constant moment arms (dof, M), as MotorNet's `Reacher` and `FreePointMass24`.

    These effectors have no muscle path: l_mt and v_mt are reported as zero (MotorNet 0.3.0's convention),
    so only muscle models that ignore length and velocity (`LinearMuscle`) make sense with them.
    """

    kind = "constant"

    def __init__(self, n_muscles: int, dof: int, moment_arm: FloatLike, *, dtype: torch.dtype = torch.float32,
                 device: Any = None) -> None:
        self.n_muscles, self.dof = n_muscles, dof
        self._set_tensors(dict(moment_arm=moment_arm), dtype, device)

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"moment_arm": (self.dof, self.n_muscles)}

    def __call__(self, skeleton: Skeleton, q: Tensor, qd: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        zeros = q.new_zeros(q.shape[0], self.n_muscles)
        return zeros, zeros, self.moment_arm.expand(q.shape[0], -1, -1)

    def supports_vjp(self, skeleton: Skeleton) -> bool:
        return True

    def vjp(self, skeleton: Skeleton, q: Tensor, qd: Tensor, moment_arm: Tensor, g_length: Tensor,
            g_velocity: Tensor, g_moment_arm: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return None, None  # nothing here depends on the joint state


class ViaPointGeometry(Geometry):
    """Muscle paths as straight segments between via points fixed to bodies (Sherman, Seth & Delp 2013).

    Point p sits on body `bodies[p]` (0 = world, 1 = first link or the point mass, 2 = forearm) at local
    coordinates `local[p]` (m); consecutive points of the same muscle (`point_muscle[p]`, non-decreasing)
    form its segments. Per segment s with end-point difference d_s: length |d_s|, velocity
    d_s . (J_s qd) / |d_s| and d length / d q = d_s . J_s / |d_s|, J_s the difference of the two points'
    position Jacobians, so velocities and moment arms are exact (forearm points included while the shoulder
    moves). All muscles and segments are evaluated at once; a segment sum matrix adds them per muscle. On a
    skeleton whose point Jacobians are constant (a point mass) the segment vectors are affine in q, and the
    whole path is four small matrix products (`_affine`).
    """

    kind = "via_points"
    settings = ("n_muscles", "dof", "bodies", "point_muscle")

    def __init__(self, n_muscles: int, dof: int, bodies: Sequence[int], point_muscle: Sequence[int],
                 local: FloatLike, *, dtype: torch.dtype = torch.float32, device: Any = None) -> None:
        self.n_muscles, self.dof = n_muscles, dof
        self.bodies = [int(b) for b in bodies]
        self.point_muscle = [int(m) for m in point_muscle]
        if len(self.bodies) != len(self.point_muscle):
            raise ValueError(f"bodies ({len(self.bodies)}) and point_muscle ({len(self.point_muscle)}) must have "
                             "one entry per via point")
        if any(b < 0 for b in self.bodies):
            raise ValueError(f"body indices must be >= 0, got {self.bodies}")
        if sorted(self.point_muscle) != self.point_muscle or set(self.point_muscle) != set(range(n_muscles)):
            raise ValueError("point_muscle must list each muscle index 0..n_muscles-1, grouped in order")
        counts = [self.point_muscle.count(m) for m in range(n_muscles)]
        if min(counts) < 2:
            raise ValueError(f"every muscle needs at least 2 via points; points per muscle: {counts}")
        self._set_tensors(dict(local=local), dtype, device)

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"local": (len(self.bodies), 2)}

    def check_skeleton(self, skeleton: Skeleton) -> None:
        super().check_skeleton(skeleton)
        if max(self.bodies) >= skeleton.n_bodies:
            raise ValueError(f"a via point sits on body {max(self.bodies)}, but {type(skeleton).__name__} has "
                             f"bodies 0..{skeleton.n_bodies - 1}")

    def _refresh(self) -> None:
        device = self.local.device
        pm = self.point_muscle
        starts = [p for p in range(len(pm) - 1) if pm[p] == pm[p + 1]]
        n_seg, dtype = len(starts), self.local.dtype
        self._body = torch.tensor(self.bodies, device=device)
        # Segment s runs from point starts[s] to starts[s] + 1: difference matrix (P, S) and per-muscle sums
        # (S, M). Differences act on flattened (B, P * k) point data through kron(diff, I_k), so that one
        # matrix product (batch folded into its rows) serves the whole batch.
        diff = torch.zeros(len(pm), n_seg, dtype=torch.float64)
        diff[torch.tensor(starts) + 1, torch.arange(n_seg)] = 1.0
        diff[torch.tensor(starts), torch.arange(n_seg)] = -1.0
        self._diff_pos = torch.kron(diff, torch.eye(2, dtype=torch.float64)).to(device=device, dtype=dtype)
        self._diff_jac = torch.kron(diff, torch.eye(2 * self.dof, dtype=torch.float64)).to(device=device, dtype=dtype)
        self._sum = torch.zeros(n_seg, self.n_muscles, dtype=dtype, device=device)
        self._sum[torch.arange(n_seg), torch.tensor([pm[p] for p in starts])] = 1.0
        self._affine_cache: tuple[Skeleton, tuple[Tensor, Tensor, Tensor]] | None = None

    def _affine(self, skeleton: Skeleton) -> tuple[Tensor, Tensor, Tensor]:
        """For a skeleton with constant point Jacobians the segment vectors are affine in q, d = d0 + D q:
        (d0 (2S,), D^T (dof, 2S), W (2S, dof M)) with moment_arm = n @ W for the unit segment vectors n (B, 2S),
        cached per skeleton."""
        cached = self._affine_cache
        if cached is not None and cached[0] is skeleton:
            return cached[1]
        zero = torch.zeros(1, self.dof, dtype=self.local.dtype, device=self.local.device)
        pos, jac = skeleton.point_kinematics(zero, self._body, self.local)
        d0 = (pos.reshape(1, -1) @ self._diff_pos).reshape(-1)
        dj = (jac.reshape(1, -1) @ self._diff_jac).view(-1, 2, self.dof)  # (S, 2, dof)
        # moment_arm[b, j, m] = -sum_{s of m} sum_c n[b, s, c] dj[s, c, j]
        w = -torch.einsum("scj,sm->scjm", dj, self._sum).reshape(2 * dj.shape[0], -1)
        tables = (d0, dj.permute(2, 0, 1).reshape(self.dof, -1), w)
        self._affine_cache = (skeleton, tables)
        return tables

    def __call__(self, skeleton: Skeleton, q: Tensor, qd: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, dof = q.shape[0], self.dof
        if skeleton.constant_point_jacobian:
            d0, dj_t, w = self._affine(skeleton)
            d = torch.addmm(d0, q, dj_t).view(b, -1, 2)  # (B, S, 2)
            length = torch.sqrt((d * d).sum(-1).clamp_min(_MIN_SEGMENT_SQ))  # (B, S)
            moment_arm = ((d / length.unsqueeze(-1)).view(b, -1) @ w).view(b, dof, -1)  # (B, dof, M)
            return length @ self._sum, -torch.bmm(qd.unsqueeze(1), moment_arm).squeeze(1), moment_arm
        pos, jac = skeleton.point_kinematics(q, self._body, self.local)
        d = (pos.reshape(b, -1) @ self._diff_pos).view(b, -1, 2)  # (B, S, 2): segment vectors
        dj = (jac.reshape(b, -1) @ self._diff_jac).view(b, -1, 2, dof)  # (B, S, 2, dof)
        dx, dy = d[..., 0], d[..., 1]
        length = torch.sqrt((dx * dx + dy * dy).clamp_min(_MIN_SEGMENT_SQ))  # (B, S)
        dl_dq = (dx[..., None] * dj[:, :, 0] + dy[..., None] * dj[:, :, 1]) / length[..., None]  # (B, S, dof)
        v_seg = dl_dq[..., 0] * qd[:, :1]
        for j in range(1, dof):
            v_seg = v_seg + dl_dq[..., j] * qd[:, j:j + 1]
        l_mt = length @ self._sum
        v_mt = v_seg @ self._sum
        moment_arm = -(dl_dq.transpose(1, 2).reshape(b * dof, -1) @ self._sum).view(b, dof, -1)  # (B, dof, M)
        return l_mt, v_mt, moment_arm

    def supports_vjp(self, skeleton: Skeleton) -> bool:
        return skeleton.constant_point_jacobian

    def vjp(self, skeleton: Skeleton, q: Tensor, qd: Tensor, moment_arm: Tensor, g_length: Tensor,
            g_velocity: Tensor, g_moment_arm: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Backwards through `__call__`'s affine path: d = d0 + q D^T, n = d / |d|, moment_arm = n W,
        l_mt = |d| @ sum, v_mt = -qd . moment_arm (constant point Jacobians, as `supports_vjp` requires)."""
        if not skeleton.constant_point_jacobian:
            raise NotImplementedError("ViaPointGeometry.vjp needs a skeleton with constant point Jacobians")
        b = q.shape[0]
        d0, dj_t, w = self._affine(skeleton)
        d = torch.addmm(d0, q, dj_t).view(b, -1, 2)  # (B, S, 2)
        length = torch.sqrt((d * d).sum(-1, keepdim=True).clamp_min(_MIN_SEGMENT_SQ))  # (B, S, 1)
        n = d / length
        g_arm = torch.addcmul(g_moment_arm, qd.unsqueeze(-1), g_velocity.unsqueeze(1), value=-1.0)  # (B, dof, M)
        g_qd = -torch.bmm(moment_arm, g_velocity.unsqueeze(-1)).squeeze(-1)
        g_n = (g_arm.reshape(b, -1) @ w.t()).view(b, -1, 2)  # (B, S, 2)
        g_len = (g_length @ self._sum.t()).unsqueeze(-1)  # (B, S, 1)
        g_d = torch.addcmul(g_n, n, (n * g_n).sum(-1, keepdim=True) - g_len * length, value=-1.0) / length
        return g_d.view(b, -1) @ dj_t.t(), g_qd


GEOMETRIES: dict[str, type[Geometry]] = {
    cls.kind: cls for cls in (PolynomialGeometry, ConstantGeometry, ViaPointGeometry)
}
