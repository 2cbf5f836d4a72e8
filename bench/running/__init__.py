"""Running: the run spec (``spec``), what identifies a run (``identity``), planning specs into
prepared runs (``planning``), executing one prepared run (``execution``), sweep files
(``sweep``), and the executors with the coordinator that opens and ends MLflow runs."""
