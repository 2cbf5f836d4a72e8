"""facehash-bench: the harness core. It knows no method by name; plugins bring them.

Plugin authors import :data:`hookimpl` from here and implement the hooks listed in
:mod:`bench.api.hookspecs`.
"""

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]


def __getattr__(name: str):
    """``bench.hookimpl``, imported on first use (so that ``bench --help`` loads no pluggy)."""
    if name == "hookimpl":
        from bench.api.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
