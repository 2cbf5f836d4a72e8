"""facehash-bench: the harness core. It knows no method by name; plugins bring them.

Plugin authors import :data:`hookimpl` from here and implement the hooks listed in
:mod:`bench.api.hookspecs`.
"""

from bench.api.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
