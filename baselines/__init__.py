"""Baselines: the deep methods DDH, DSH, DCDH, DPSH, HashNet, GreedyHash, CSQ and OrthoHash,
and the non-learned floors (LSH, PCA-ITQ, PCA-sign, and both on frozen pretrained features)."""

from baselines.csq import CSQ
from baselines.dcdh import DCDH
from baselines.ddh import DDH
from baselines.dpsh import DPSH
from baselines.dsh import DSH
from baselines.greedyhash import GreedyHash
from baselines.hashnet import HashNet
from baselines.itq import PCAITQ, PCASign
from baselines.lsh import LSH
from baselines.orthohash import OrthoHash
from baselines.pretrained import PretrainedITQ, PretrainedSign
from bench import hookimpl


@hookimpl
def register_methods(register):
    for method in (DDH(), DSH(), DPSH(), HashNet(), GreedyHash(), LSH(), PCAITQ(), PCASign(), DCDH(), CSQ(),
                   OrthoHash(), PretrainedITQ(), PretrainedSign()):
        register(method.name, method)
