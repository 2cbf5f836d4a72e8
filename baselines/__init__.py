"""Baselines: DDH, DSH, DPSH, HashNet, GreedyHash and the non-learned floors (LSH, PCA-ITQ,
PCA-sign, and both on frozen pretrained features)."""

from baselines.ddh import DDH
from baselines.dpsh import DPSH
from baselines.dsh import DSH
from baselines.greedyhash import GreedyHash
from baselines.hashnet import HashNet
from baselines.itq import PCAITQ, PCASign
from baselines.lsh import LSH
from baselines.pretrained import PretrainedITQ, PretrainedSign
from bench import hookimpl


@hookimpl
def register_methods(register):
    register("ddh", DDH())
    register("dsh", DSH())
    register("dpsh", DPSH())
    register("hashnet", HashNet())
    register("greedyhash", GreedyHash())
    register("lsh", LSH())
    register("pca-itq", PCAITQ())
    register("pca-sign", PCASign())
    register("pretrained-pca-itq", PretrainedITQ())
    register("pretrained-pca-sign", PretrainedSign())
