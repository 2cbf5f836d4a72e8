"""The retrieval system of a finished run: its stored encoder applied to new images, faiss
binary indexes of its gallery codes, and search by image, by query split or by radius.

A layer beside :mod:`bench.running` and :mod:`bench.reports`: it reads runs through
:mod:`bench.tracking` and uses :mod:`bench.evaluation` and :mod:`bench.data`, never the reverse.
"""
