"""Dataset plugins: each returns a :class:`bench.data.FaceData` with its protocol split."""

from bench import hookimpl
from plugins.datasets.orl import load_orl


@hookimpl
def register_datasets(register):
    register("orl", load_orl)
