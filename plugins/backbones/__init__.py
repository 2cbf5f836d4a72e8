"""Backbones: networks mapping images to named features."""

from bench import hookimpl
from plugins.backbones.dcdh_net import DCDHNet
from plugins.backbones.ddh_net import DDHNet
from plugins.backbones.dlib_resnet import build_dlib_resnet
from plugins.backbones.dsh_net import DSHNet
from plugins.backbones.timm_adapter import TimmBackbone
from plugins.backbones.vgg import VGG16Trunc


@hookimpl
def register_backbones(register):
    register("dcdh-net", DCDHNet)
    register("ddh-net", DDHNet)
    register("dlib-resnet", build_dlib_resnet)
    register("dsh-net", DSHNet)
    register("vgg16-trunc", VGG16Trunc)
    register("timm:", TimmBackbone)
