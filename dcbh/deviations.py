"""The differences between the ``dcbh`` port and the released TF code that no option
removes (each becomes a ``deviation.<name>`` tag of every DCBH run; docs/dcbh.md lists them)."""

from __future__ import annotations

#: Differences from the TF reference that the port cannot avoid (or chooses), always true.
FIXED_DEVIATIONS: dict[str, str] = {
    "bn_zero_debias": (
        "TF batch_norm(zero_debias_moving_mean=True) has no PyTorch counterpart; running "
        "means are not zero-debiased (affects evaluation-time statistics in early steps)"
    ),
    # No ``bn_running_var`` deviation: both update the running variance with the Bessel-corrected
    # batch variance. updates_collections=None (and zero_debias_moving_mean=True) send TF's
    # contrib batch_norm to _fused_batch_norm ("Only use _fused_batch_norm if ... (3) it is used
    # with zero_debias_moving_mean, or ... non-default updates_collections", layers.py), whose
    # moving variance is assigned from the FusedBatchNorm op's batch_var output, and that kernel
    # returns ``variance * rest_size_adjust`` with ``rest_size_adjust = n / (n - 1)`` ("This
    # adjustment is for Bessel's correction", tensorflow/core/kernels/fused_batch_norm_op.cc;
    # cuDNN's running variance is unbiased too): what torch's BatchNorm does.
    "adam_epsilon": (
        "TF Adam adds epsilon before the bias correction (effective 1e-8/sqrt(1-beta2^t)), "
        "PyTorch after it"
    ),
    "feature_concat_order": (
        "descriptor input is [block3, block4]; TF concatenates [block4, block3] (a fixed "
        "permutation of the Linear's input columns, same model family and init)"
    ),
    "center_update_order": (
        "centre rule applied after the optimizer step with the centres the forward pass read; "
        "TF runs scatter_sub before Adam's update in the same session step"
    ),
    "checkpoint_selection": (
        "lowest epoch training loss over all epochs; TF also saved unconditionally at epoch 5 "
        "and only below an initial threshold of 10.0"
    ),
    "selection_l2_term": (
        "the selection loss adds the decay penalty (0 with weight decay 0); TF's released cost adds "
        "the regularizer applied to the L2 losses, 1e-12 * sum ||W||^4 (about 1e-6 here)"
    ),
    "last_batch": (
        "TF runs int(N / 256) + 1 steps per epoch, the last one empty when 256 divides N; here "
        "ceil(N / 256)"
    ),
}
