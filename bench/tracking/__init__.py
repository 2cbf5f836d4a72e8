"""MLflow tracking: the write side (:mod:`~bench.tracking.client`), the read side
(:mod:`~bench.tracking.store`), retries on a shared SQLite store."""
