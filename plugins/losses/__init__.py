"""Loss parts: named, weighted terms that read the model's outputs."""

from bench import hookimpl
from plugins.losses.center import CenterLoss
from plugins.losses.central import CentralSimilarityLoss
from plugins.losses.classification import CodeCrossEntropy, DescriptorCrossEntropy
from plugins.losses.cosine_margin import CosineMarginLoss
from plugins.losses.dual_centre import CodeRegressionLoss, DualCentreLoss
from plugins.losses.likelihood import DPSHLikelihood, HashNetPairwise
from plugins.losses.pairwise import DSHPairwiseLoss
from plugins.losses.penalties import CubicLoss, SignDistanceLoss
from plugins.losses.quantization import QuantizationLoss


@hookimpl
def register_losses(register):
    register("dsh-pairwise", DSHPairwiseLoss)
    register("ce_code", CodeCrossEntropy)
    register("ce_descriptor", DescriptorCrossEntropy)
    register("center", CenterLoss)
    register("quantization", QuantizationLoss)
    register("csq-central", CentralSimilarityLoss)
    register("cosine-margin-ce", CosineMarginLoss)
    register("dcdh-centres", DualCentreLoss)
    register("dcdh-regression", CodeRegressionLoss)
    register("dpsh-likelihood", DPSHLikelihood)
    register("hashnet-pairwise", HashNetPairwise)
    register("sign-l2", SignDistanceLoss)
    register("cubic", CubicLoss)
