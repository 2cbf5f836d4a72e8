"""Generic building blocks any method can reuse: backbones, hashing heads, loss parts and
datasets. Each subpackage is a plugin of its own, loaded through the ``facehash_bench``
entry-point group like any third-party plugin."""
