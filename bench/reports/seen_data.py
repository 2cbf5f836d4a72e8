"""Rows of a report whose pretrained network was trained partly on the dataset they are
scored on (the runs' ``facehash.pretrained.trained_on`` tag, e.g. dlib's network on
FaceScrub): their scores are not measured on unseen faces, and the report says so under
its table and among its notes."""

from __future__ import annotations

import pandas as pd

from bench.tracking import tags


def seen_data_notes(runs: pd.DataFrame) -> list[str]:
    """One note per (dataset, network) the runs were scored on after training on it.

    >>> runs = pd.DataFrame({"variant": ["csq[backbone=net]", "lsh"], tags.column(tags.PRETRAINED_TRAINED_ON):
    ...                      ["facescrub", None], tags.column(tags.PRETRAINED_BACKBONE): ["net", None]})
    >>> seen_data_notes(runs)  # doctest: +NORMALIZE_WHITESPACE
    ['csq[backbone=net]: the pretrained network net was trained partly on facescrub, the dataset these runs
      are scored on; their scores are not measured on unseen faces']
    >>> seen_data_notes(runs.drop(columns=[tags.column(tags.PRETRAINED_TRAINED_ON)]))
    []
    """
    seen, net = tags.column(tags.PRETRAINED_TRAINED_ON), tags.column(tags.PRETRAINED_BACKBONE)
    if seen not in runs:
        return []
    flagged = runs[runs[seen].notna()].assign(network=runs.get(net, pd.Series("?", index=runs.index)).fillna("?"))
    return [f"{', '.join(sorted(group['variant'].unique()))}: the pretrained network {network} was trained partly "
            f"on {dataset}, the dataset these runs are scored on; their scores are not measured on unseen faces"
            for (dataset, network), group in flagged.groupby([seen, "network"], sort=True)]
