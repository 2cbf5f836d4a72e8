"""Baselines: DCDH, DDH, DSH, CSQ, OrthoHash and the non-learned floors (LSH, PCA-ITQ, PCA-sign)."""

from baselines.csq import CSQ
from baselines.dcdh import DCDH
from baselines.ddh import DDH
from baselines.dsh import DSH
from baselines.itq import PCAITQ, PCASign
from baselines.lsh import LSH
from baselines.orthohash import OrthoHash
from bench import hookimpl


@hookimpl
def register_methods(register):
    register("ddh", DDH())
    register("dsh", DSH())
    register("lsh", LSH())
    register("pca-itq", PCAITQ())
    register("pca-sign", PCASign())
    register("dcdh", DCDH())
    register("csq", CSQ())
    register("orthohash", OrthoHash())
