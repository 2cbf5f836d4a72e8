"""What the methods that reproduce released evaluation code share.

A method's reference, published budget and deviation tags are declared on the method itself
(:class:`bench.api.methods.Reference`, :meth:`bench.api.methods.Method.tags`).
"""

from __future__ import annotations

#: The legacy evaluation family of the released DDH/DCBH code (``compactbit`` + ``hammingDist``:
#: ``cat_apcal`` mAP and precision@50, ``evaluate_macro`` precision/recall within radius 2),
#: asked for by name under ``standard=released`` (plugins/metrics registers them).
LEGACY_METRICS = ("map_legacy", "precision_at_50_legacy", "precision_r2_legacy", "recall_r2_legacy")
