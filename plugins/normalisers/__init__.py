"""Input normalisations, named by ``protocol.normalisation``.

The built-in kinds are harness machinery (subclasses of :class:`bench.data.preprocess.Normaliser`),
registered here like any plugin's; ``legacy-ddh`` reproduces the released DDH/DCBH code, ``caffe-mean-image`` the
released DSH code, ``dlib-rgb`` the input of dlib's face-recognition network.
"""

from bench import hookimpl
from bench.data.preprocess import ChannelMeanStd, UnitScale
from plugins.normalisers.caffe_mean import CaffeMeanImageNormaliser
from plugins.normalisers.dlib_rgb import DlibRGBNormaliser
from plugins.normalisers.legacy_ddh import LegacyDDHNormaliser


@hookimpl
def register_normalisers(register):
    register("channel-mean-std", ChannelMeanStd,
             "Per-channel mean and std of the training split's pixels (scaled to [0, 1]); the default.")
    register("unit", UnitScale, "Pixels / 255.")
    register("legacy-ddh", LegacyDDHNormaliser)
    register("caffe-mean-image", CaffeMeanImageNormaliser)
    register("dlib-rgb", DlibRGBNormaliser)
