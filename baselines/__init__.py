"""Baselines: the deep methods DDH, DSH, DCDH, DPSH, HashNet, GreedyHash, CSQ and OrthoHash,
and the non-learned floors (LSH, PCA-ITQ, PCA-sign, PCA + random rotation; PCA-ITQ and PCA-sign
on frozen pretrained timm features: ``timm-pca-itq``, ``timm-pca-sign``); on the embeddings of
dlib's face-recognition network, ``dlib-float`` (the float top line) and ``dlib-lsh``,
``dlib-pca-sign``, ``dlib-pca-rr``, ``dlib-pca-itq``."""

from baselines.csq import CSQ
from baselines.dcdh import DCDH
from baselines.ddh import DDH
from baselines.dpsh import DPSH
from baselines.dsh import DSH
from baselines.embedding import embedding_methods
from baselines.greedyhash import GreedyHash
from baselines.hashnet import HashNet
from baselines.itq import PCAITQ, PCARandomRotation, PCASign
from baselines.lsh import LSH
from baselines.orthohash import OrthoHash
from baselines.pretrained import PretrainedITQ, PretrainedSign
from bench import hookimpl


@hookimpl
def register_methods(register):
    for method in (DDH(), DSH(), DPSH(), HashNet(), GreedyHash(), LSH(), PCAITQ(), PCASign(),
                   PCARandomRotation(), DCDH(), CSQ(), OrthoHash(), PretrainedITQ(), PretrainedSign(),
                   *embedding_methods("dlib", "dlib-resnet").values()):  # dlib-float, dlib-pca-itq, ...
        register(method.name, method)
