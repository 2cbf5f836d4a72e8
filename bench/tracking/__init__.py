"""MLflow tracking: the write side (:mod:`~bench.tracking.client`), the read side
(:mod:`~bench.tracking.reading`; what a sweep finds in the store: :mod:`~bench.tracking.store`),
the tag names (:mod:`~bench.tracking.tags`), retries on a shared SQLite store."""
