"""Retrieval galleries: a few fixed queries, each with its top-10 gallery images by Hamming
distance, correct matches framed green and wrong ones red, the distance under each.

Built from a run's ``codes.npz`` artifact (packed codes, labels and the indices of the
gallery and query images in the dataset) and the dataset rebuilt from the run's protocol.
Ties in distance keep gallery order (a stable sort), as the first evaluation engine did.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.api.errors import BenchError
from bench.evaluation import hamming_distances
from bench.evaluation.codes import unpack_codes

GREEN, RED, QUERY_FRAME = "#1a9850", "#d73027", "#2c7fb8"


def pick_queries(n_queries: int, count: int) -> np.ndarray:
    """``count`` fixed query positions spread evenly over the query set (same for every run).

    >>> pick_queries(80, 4).tolist(), pick_queries(2, 4).tolist()
    ([0, 26, 53, 79], [0, 1])
    """
    return np.unique(np.linspace(0, n_queries - 1, min(count, n_queries)).round().astype(int))


def top_matches(query_codes: np.ndarray, gallery_codes: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Hamming distances of the ``k`` nearest gallery codes per query.

    >>> q = np.array([[1, 1, 1]]); g = np.array([[-1, -1, -1], [1, 1, -1], [1, 1, 1], [1, -1, 1]])
    >>> idx, dist = top_matches(q, g, 3)
    >>> idx.tolist(), dist.tolist()
    ([[2, 1, 3]], [[0, 1, 1]])
    """
    dist = hamming_distances(query_codes, gallery_codes)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(dist, order, axis=1)


def frame_colours(query_labels: np.ndarray, result_labels: np.ndarray) -> np.ndarray:
    """Green where a result shares the query's identity, red elsewhere; ``(Q, k)``.

    >>> frame_colours(np.array([3]), np.array([[3, 1]])).tolist()
    [['#1a9850', '#d73027']]
    """
    same = np.asarray(result_labels) == np.asarray(query_labels)[:, None]
    return np.where(same, GREEN, RED)


def to_display(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(C, H, W) uint8 -> an array imshow takes, and the colour map for one channel."""
    if image.shape[0] == 1:
        return image[0], "gray"
    return np.transpose(image[:3], (1, 2, 0)), None


def render_gallery(
    query_images: np.ndarray,
    query_labels: np.ndarray,
    result_images: np.ndarray,
    result_labels: np.ndarray,
    distances: np.ndarray,
    title: str,
    path: Path,
) -> Path:
    """Draw rows of (query | results); ``result_*`` are (Q, k, ...) and ``distances`` (Q, k)."""
    n, k = distances.shape
    height = 1.3 * n + 0.45
    fig = Figure(figsize=(1.0 * (k + 1.4), height))
    grid = fig.add_gridspec(n, k + 2, width_ratios=[1, 0.25] + [1] * k, wspace=0.08, hspace=0.42,
                            top=1 - 0.5 / height, bottom=0.25 / height, left=0.01, right=0.99)
    frames = frame_colours(query_labels, result_labels)
    for row in range(n):
        _tile(fig.add_subplot(grid[row, 0]), query_images[row], QUERY_FRAME, f"query id {query_labels[row]}")
        for col in range(k):
            _tile(fig.add_subplot(grid[row, col + 2]), result_images[row, col], frames[row, col],
                  f"d={distances[row, col]}")
    fig.suptitle(title, fontsize=12, y=1 - 0.08 / height, va="top")
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight", facecolor="white")
    return path


def _tile(ax, image: np.ndarray, colour: str, caption: str) -> None:
    pixels, cmap = to_display(image)
    ax.imshow(pixels, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(3)
    ax.set_xlabel(caption, fontsize=10.5, labelpad=1)


def select(stored, labels: np.ndarray, count: int = 4, k: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dataset indices of the chosen queries ``(Q,)``, of their top-``k`` results ``(Q, k)``,
    and the distances, from a ``codes.npz`` mapping checked against the dataset's labels."""
    bits = int(stored["bits"])
    gallery_index, query_index = stored["gallery_index"], stored["query_index"]
    if max(gallery_index.max(), query_index.max()) >= len(labels) or not (
        np.array_equal(labels[gallery_index], stored["gallery_labels"])
        and np.array_equal(labels[query_index], stored["query_labels"])
    ):
        raise BenchError("codes.npz: the stored labels do not match the rebuilt dataset; was its data changed?")
    chosen = pick_queries(len(query_index), count)
    queries = unpack_codes(stored["query_codes"], bits)[chosen]
    idx, dist = top_matches(queries, unpack_codes(stored["gallery_codes"], bits), min(k, len(gallery_index)))
    return query_index[chosen], gallery_index[idx], dist


def run_gallery(
    codes_path: Path, images: np.ndarray, labels: np.ndarray, title: str, path: Path,
    count: int = 4, k: int = 10,
) -> Path:
    """The gallery of one run from its ``codes.npz`` and the dataset's images and labels."""
    queries, results, dist = select(np.load(codes_path), labels, count, k)
    return render_gallery(images[queries], labels[queries], images[results], labels[results], dist, title, path)
