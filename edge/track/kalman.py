"""The constant-velocity Kalman filter of the tracker, on (cx, cy, aspect, height), batched."""

from __future__ import annotations

import numpy as np


def xyxy_to_xyah(b: np.ndarray) -> np.ndarray:
    w, h = b[2] - b[0], b[3] - b[1]
    return np.array([b[0] + w / 2, b[1] + h / 2, w / max(h, 1e-6), h], dtype=np.float64)


def xyah_to_xyxy(m: np.ndarray) -> np.ndarray:
    h = max(float(m[3]), 1e-6)
    w = float(m[2]) * h
    return np.array([m[0] - w / 2, m[1] - h / 2, m[0] + w / 2, m[1] + h / 2], dtype=np.float64)


class KalmanXYAH:
    """Constant-velocity filter on (cx, cy, aspect, height) with noise proportional to height
    (the ByteTrack/DeepSORT parametrisation), generalised to a frame gap ``dt``."""

    std_pos = 1.0 / 20
    std_vel = 1.0 / 160

    def initiate(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = np.r_[z, np.zeros(4)]
        h = z[3]
        std = [
            2 * self.std_pos * h, 2 * self.std_pos * h, 1e-2, 2 * self.std_pos * h,
            10 * self.std_vel * h, 10 * self.std_vel * h, 1e-5, 10 * self.std_vel * h,
        ]  # fmt: skip
        return mean, np.diag(np.square(std))

    def predict(
        self, means: np.ndarray, covs: np.ndarray, dt: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batched: means (N, 8), covs (N, 8, 8), all advanced by ``dt`` frames."""
        f = np.eye(8)
        f[:4, 4:] = np.eye(4) * dt
        h = means[:, 3:4]
        std = np.array(
            [self.std_pos] * 2 + [0.0, self.std_pos] + [self.std_vel] * 2 + [0.0, self.std_vel]
        )
        fixed = np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0])
        q = np.square(std * h + fixed)
        covs = f @ covs @ f.T
        # process noise grows with the gap: a random walk over dt frames
        idx = np.arange(8)
        covs[:, idx, idx] += q * dt
        return means @ f.T, covs

    def update(
        self, means: np.ndarray, covs: np.ndarray, zs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batched: fold measurements zs (N, 4) into means (N, 8), covs (N, 8, 8)."""
        h = means[:, 3:4]
        r = np.square(
            np.array([self.std_pos, self.std_pos, 0.0, self.std_pos]) * h + [0, 0, 0.1, 0]
        )
        proj = covs[:, :4, :4].copy()
        idx = np.arange(4)
        proj[:, idx, idx] += r
        gain = np.linalg.solve(proj, covs[:, :4, :]).transpose(0, 2, 1)  # (N,8,4)
        means = means + (gain @ (zs - means[:, :4])[:, :, None])[:, :, 0]
        covs = covs - gain @ proj @ gain.transpose(0, 2, 1)
        return means, covs

    def position_distance(
        self, means: np.ndarray, covs: np.ndarray, centres: np.ndarray
    ) -> np.ndarray:
        """Squared Mahalanobis distance (N, M) of each measured centre, ``centres`` (M, 2), from
        each predicted one, under the prediction's uncertainty plus the measurement noise: a
        chi-square variable with 2 degrees of freedom when the model holds. Centre only: box
        size and aspect jitter far more than the model's noise on partly cut boxes."""
        if len(means) == 0 or len(centres) == 0:
            return np.zeros((len(means), len(centres)))
        h = means[:, 3]
        s = covs[:, :2, :2].copy()
        s[:, 0, 0] += np.square(self.std_pos * h)
        s[:, 1, 1] += np.square(self.std_pos * h)
        d = centres[None, :, :] - means[:, None, :2]  # (N, M, 2)
        inv = np.linalg.inv(s)  # (N, 2, 2)
        return np.einsum("nmi,nij,nmj->nm", d, inv, d)
