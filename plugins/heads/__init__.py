"""Hashing heads: features -> relaxed codes ``u``."""

from bench import hookimpl
from plugins.heads.block import BlockHead
from plugins.heads.bn_hash import BNHashHead
from plugins.heads.divide_encode import DivideEncodeHead
from plugins.heads.fc import FCHead
from plugins.heads.straight_through import SignFCHead


@hookimpl
def register_heads(register):
    register("divide-encode", DivideEncodeHead)
    register("block", BlockHead)
    register("fc", FCHead)
    register("bn-hash", BNHashHead)
    register("fc-sign", SignFCHead)
