"""Data: face sets with their fixed splits (:class:`~bench.data.faces.FaceData`), the
checksummed uint8 cache, integrity checks and input preprocessing."""
