"""``synthfaces``: procedural faces for tests and scale benchmarks without downloads.

Identity (fixed per person): face width, height and jaw taper, eye spacing, height and
size, brow height, nose length and width, mouth width and height, skin tone, hair tone,
hairline and hair volume. Nuisance (per image): pose (shift, in-plane rotation, scale,
yaw as a sideways shift of the inner features), expression (smile, open mouth, eye
opening, raised brows), illumination (gain, a directional gradient, colour tint),
background colour and Gaussian pixel noise.

Rendering is vectorised over a batch of images with soft-edged masks on a pixel grid
(about 2 s per 10,000 images at 32 x 32 on one core). Determinism: person ``k``'s face
depends only on ``seed`` and ``k`` (not on ``identities``), and its images only on
``seed``, ``k``, ``images_per_identity`` and ``size``. The split is per identity,
seeded by ``seed``: ``query`` (5) and ``val`` (2) images, the rest train.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.api.errors import BenchError
from bench.data.faces import FaceData
from plugins.datasets.assemble import ImagePool, finish, split_by_identity

IDENTITY_PARAMS = ("face_w", "face_h", "jaw", "eye_dx", "eye_y", "eye_r", "brow_dy", "nose_len",
                   "nose_w", "mouth_w", "mouth_y", "skin", "skin_hue", "hair_kind", "hair_shade",
                   "hairline", "hair_volume")
NUISANCE_PARAMS = ("dx", "dy", "angle", "scale", "yaw", "smile", "mouth_open", "eye_open", "brow_up",
                   "gain", "light_angle", "light_strength", "tint_r", "tint_b", "bg_r", "bg_g", "bg_b",
                   "noise")
CHUNK = 8  # identities rendered per batch (also the unit of the noise stream)
HAIR_COLOURS = np.array([[0.08, 0.06, 0.05], [0.35, 0.2, 0.1], [0.85, 0.7, 0.4],
                         [0.6, 0.25, 0.1], [0.7, 0.7, 0.7]], dtype=np.float32)


def _scale(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (lo + (hi - lo) * u).astype(np.float32)


def identity_params(seed: int, identities: int) -> dict[str, np.ndarray]:
    """Per-identity shape and colour parameters; row ``k`` does not depend on ``identities``."""
    u = np.random.default_rng([seed, 1]).random((identities, len(IDENTITY_PARAMS)))
    p = dict(zip(IDENTITY_PARAMS, u.T, strict=True))
    skin = _scale(p["skin"], 0.0, 1.0)[:, None]
    light_skin, dark_skin = np.array([0.96, 0.8, 0.68]), np.array([0.36, 0.23, 0.16])
    hue = _scale(p["skin_hue"], -0.05, 0.05)[:, None] * np.array([1.0, 0.0, -1.0])
    hair = HAIR_COLOURS[np.minimum((p["hair_kind"] * len(HAIR_COLOURS)).astype(int), len(HAIR_COLOURS) - 1)]
    return {
        "face_w": _scale(p["face_w"], 0.46, 0.62), "face_h": _scale(p["face_h"], 0.62, 0.8),
        "jaw": _scale(p["jaw"], 0.0, 0.35), "eye_dx": _scale(p["eye_dx"], 0.17, 0.3),
        "eye_y": _scale(p["eye_y"], -0.2, -0.04), "eye_r": _scale(p["eye_r"], 0.05, 0.09),
        "brow_dy": _scale(p["brow_dy"], 0.09, 0.16), "nose_len": _scale(p["nose_len"], 0.14, 0.3),
        "nose_w": _scale(p["nose_w"], 0.05, 0.11), "mouth_w": _scale(p["mouth_w"], 0.13, 0.28),
        "mouth_y": _scale(p["mouth_y"], 0.3, 0.46), "hairline": _scale(p["hairline"], -0.75, -0.4),
        "hair_volume": _scale(p["hair_volume"], 0.03, 0.2),
        "skin": (light_skin + (dark_skin - light_skin) * skin + hue).astype(np.float32),
        "hair": (hair * _scale(p["hair_shade"], 0.75, 1.2)[:, None]).clip(0, 1).astype(np.float32),
    }


def nuisance_params(seed: int, identities: int, per_identity: int) -> dict[str, np.ndarray]:
    """Per-image nuisance parameters, shape ``(identities * per_identity,)`` each."""
    u = np.random.default_rng([seed, 2, per_identity]).random((identities, per_identity, len(NUISANCE_PARAMS)))
    p = {k: v.reshape(-1) for k, v in zip(NUISANCE_PARAMS, np.moveaxis(u, -1, 0), strict=True)}
    ranges = {"dx": (-0.12, 0.12), "dy": (-0.1, 0.1), "angle": (-0.3, 0.3), "scale": (0.88, 1.12),
              "yaw": (-1.0, 1.0), "smile": (-0.6, 1.0), "mouth_open": (0.0, 1.0), "eye_open": (0.25, 1.0),
              "brow_up": (0.0, 0.06), "gain": (0.6, 1.25), "light_angle": (0.0, 2 * np.pi),
              "light_strength": (0.0, 0.5), "tint_r": (-0.08, 0.08), "tint_b": (-0.08, 0.08),
              "bg_r": (0.0, 1.0), "bg_g": (0.0, 1.0), "bg_b": (0.0, 1.0), "noise": (0.01, 0.05)}
    return {k: _scale(p[k], lo, hi) for k, (lo, hi) in ranges.items()}


def _soft(distance: np.ndarray, edge: float) -> np.ndarray:
    """Coverage of a shape from a signed distance (negative inside), a linear ramp ``edge``
    wide. Works in place: ``distance`` (a temporary at every call site) is overwritten.

    >>> _soft(np.array([-1.0, 0.0, 1.0]), 1.0)
    array([1. , 0.5, 0. ])
    """
    distance *= -1.0 / edge
    distance += 0.5
    return np.clip(distance, 0.0, 1.0, out=distance)


def _compose(layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Alpha-composite ``(mask (B, H, W), colour (B, 3))`` layers, bottom first, into (B, 3, H, W).

    Each layer's weight is its mask times what the layers above leave uncovered, so the
    colours combine in one batched matrix product.

    >>> m = np.array([[[1.0]]]), np.array([[[0.25]]])
    >>> _compose([(m[0], np.array([[1.0, 0, 0]])), (m[1], np.array([[0, 1.0, 0]]))]).ravel().tolist()
    [0.75, 0.25, 0.0]
    """
    b, h, w = layers[0][0].shape
    weights = np.empty((b, len(layers), h, w), np.float32)
    uncovered, spare = np.ones((b, h, w), np.float32), np.empty((b, h, w), np.float32)
    for k in range(len(layers) - 1, -1, -1):
        mask = layers[k][0]
        np.multiply(mask, uncovered, out=weights[:, k])
        np.subtract(1.0, mask, out=spare)
        uncovered *= spare
    colours = np.stack([np.broadcast_to(c, (b, 3)) for _, c in layers], axis=2).astype(np.float32)
    return np.matmul(colours, weights.reshape(b, len(layers), h * w)).reshape(b, 3, h, w)


def render(ident: dict[str, np.ndarray], nuis: dict[str, np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """Render one batch: ``ident`` and ``nuis`` hold one row per image. Returns (B, 3, size, size) uint8."""
    def col(d, k):
        return d[k][:, None, None]

    axis = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    gy, gx = axis[None, :, None], axis[None, None, :]
    cos, sin, s = np.cos(col(nuis, "angle")), np.sin(col(nuis, "angle")), col(nuis, "scale")
    ox, oy = (gx - col(nuis, "dx")) / s, (gy - col(nuis, "dy")) / s
    x, y = cos * ox + sin * oy, -sin * ox + cos * oy  # face coordinates
    edge = 2.5 / size
    yaw = col(nuis, "yaw") * 0.1
    fw, fh = col(ident, "face_w"), col(ident, "face_h")
    width = fw * (1 - col(ident, "jaw") * np.clip(y / fh, 0, 1))
    face_d = (np.sqrt((x / width) ** 2 + (y / fh) ** 2) - 1) * fh
    vol = col(ident, "hair_volume")
    hair_d = (np.sqrt((x / (fw + vol)) ** 2 + ((y + vol) / (fh + vol)) ** 2) - 1) * fh
    hair_back = _soft(hair_d, edge) * _soft(y - (col(ident, "eye_y") + 0.05), edge)
    fringe = _soft(y - col(ident, "hairline") - 0.04 * np.cos(6 * x), edge)
    n = len(nuis["dx"])
    bg = np.stack([nuis["bg_r"], nuis["bg_g"], nuis["bg_b"]], axis=1) * 0.5 + 0.25
    face = _soft(face_d, edge)
    layers = [(np.ones_like(face), bg), (hair_back, ident["hair"]), (face, ident["skin"]),
              (face * fringe, ident["hair"])]
    fx = x - yaw  # inner features follow the yaw
    ey, er = col(ident, "eye_y"), col(ident, "eye_r")
    ex = np.abs(fx) - col(ident, "eye_dx")
    openness = col(nuis, "eye_open")
    eye_d = (np.sqrt((ex / (1.4 * er)) ** 2 + ((y - ey) / (er * openness)) ** 2) - 1) * er
    eye = _soft(eye_d, edge)
    layers.append((eye, np.full((n, 3), 0.92, np.float32)))
    pupil = eye * _soft(np.sqrt(ex**2 + (y - ey) ** 2) - 0.6 * er, edge)
    layers.append((pupil, np.full((n, 3), 0.1, np.float32)))
    brow_y = ey - col(ident, "brow_dy") - col(nuis, "brow_up")
    brow = _soft(np.abs(y - brow_y + 0.3 * ex**2) - 0.018, edge) * _soft(np.abs(ex) - 1.5 * er, edge)
    layers.append((brow, ident["hair"] * 0.7))
    nl, nw = col(ident, "nose_len"), col(ident, "nose_w")
    nose_cy = ey + 0.06 + nl / 2
    nose_d = (np.sqrt(((fx - 0.3 * yaw) / nw) ** 2 + ((y - nose_cy) / (nl / 2)) ** 2) - 1) * nw
    layers.append((_soft(nose_d, edge) * 0.45, ident["skin"] * 0.6))
    mw, my = col(ident, "mouth_w"), col(ident, "mouth_y")
    curve = my + col(nuis, "smile") * 0.07 * (1 - (fx / mw) ** 2)
    half = 0.02 + 0.035 * col(nuis, "mouth_open")
    lips = _soft(np.abs(y - curve) - half, edge) * _soft(np.abs(fx) - mw, edge)
    layers.append((lips, ident["skin"] * np.array([0.75, 0.4, 0.42], np.float32)))
    inner = _soft(np.abs(y - curve) - (half - 0.025), edge) * _soft(np.abs(fx) - 0.8 * mw, edge)
    layers.append((inner * np.clip(col(nuis, "mouth_open") * 2 - 0.4, 0, 1), np.full((n, 3), 0.15, np.float32)))
    canvas = _compose(layers)
    theta = col(nuis, "light_angle")
    light = col(nuis, "gain") * (1 + col(nuis, "light_strength") * (np.cos(theta) * gx + np.sin(theta) * gy))
    tint = np.stack([1 + nuis["tint_r"], np.ones(n, np.float32), 1 + nuis["tint_b"]], axis=1)
    canvas *= light[:, None] * tint[:, :, None, None]
    canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * nuis["noise"][:, None, None, None]
    return np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8)


def generate(identities: int, images_per_identity: int, size: int, seed: int) -> np.ndarray:
    """All images, identity-major: image ``j`` of person ``k`` is row ``k * images_per_identity + j``."""
    ident = identity_params(seed, identities)
    nuis = nuisance_params(seed, identities, images_per_identity)
    out = np.empty((identities * images_per_identity, 3, size, size), np.uint8)
    for start in range(0, identities, CHUNK):
        ids = np.arange(start, min(start + CHUNK, identities))
        rows = (ids[:, None] * images_per_identity + np.arange(images_per_identity)).reshape(-1)
        batch_ident = {k: v[np.repeat(ids, images_per_identity)] for k, v in ident.items()}
        batch_nuis = {k: v[rows] for k, v in nuis.items()}
        rng = np.random.default_rng([seed, 3, start // CHUNK, images_per_identity, size])
        out[rows] = render(batch_ident, batch_nuis, size, rng)
    return out


def load_synthfaces(
    data_root: Path | None = None,
    identities: int = 100,
    images_per_identity: int = 20,
    size: int = 32,
    val: int = 2,
    query: int = 5,
    seed: int = 0,
    split_seed: int | None = None,
) -> FaceData:
    """Procedural faces (identity: face shape, eyes, nose, mouth, skin, hair; nuisance: pose, expression, light, noise).
    ``split_seed`` seeds the per-identity split (default: ``seed``; ``--split-seeds`` sets it)."""
    if data_root is not None:
        raise BenchError("dataset 'synthfaces' is generated and reads no files; drop --data-root")
    if identities < 1 or size < 8:
        raise BenchError(f"dataset 'synthfaces': need identities >= 1 and size >= 8 (got {identities}, {size})")
    images = generate(identities, images_per_identity, size, seed)
    labels = np.repeat(np.arange(identities, dtype=np.int64), images_per_identity)
    pool = ImagePool(images, labels, [f"synth{k:05d}" for k in range(identities)])
    pool, split, excluded = split_by_identity(
        "synthfaces", pool, val=val, query=query, split_seed=seed if split_seed is None else split_seed,
        min_images=None,
    )
    meta = {"source": "generated", "generator": {"identities": identities, "images_per_identity": images_per_identity,
                                                  "size": size, "seed": seed}, "excluded_identities": excluded}
    return finish("synthfaces", pool, split, overlap="refuse", meta=meta)
