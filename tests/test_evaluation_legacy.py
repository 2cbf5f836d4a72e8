"""The legacy metric family against a literal re-implementation of the released DDH
evaluation code.

``ddh_compactbit``/``ddh_convert``/``ddh_hamming_dist``/``ddh_cat_apcal``/
``ddh_evaluate_macro`` below port utils/compactbit.py, utils/hammingDist.py,
utils/cat_apcal.py and utils/evaluate_macro.py of the DDH release (identical to the
functions in DCBH's utils/RetrievalTest.py) to Python 3 line by line (xrange -> range,
np.mat -> np.asmatrix, the prints dropped), fed as DDH.py's ``model_predict`` feeds them:
float32 sign codes. ``map_legacy`` and ``precision_at_50_legacy`` rank ties in gallery
order, so for them the pipeline ranks with a stable argsort; the ``_argsort`` metrics are
the released default (unstable) ``np.argsort`` itself and must agree bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.api.errors import BenchError
from bench.api.pluginhost import default_host
from bench.config.protocol import EvaluationSpec
from bench.evaluation import evaluate
from bench.evaluation.plugin_metrics import registered_metrics
from plugins.metrics.legacy_ddh import legacy_compactbit_bytes

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.asmatrix, as DDH

BIT_IN_CHAR = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


def ddh_convert(arr):
    arr_mat = np.asmatrix(arr)
    [_, col] = arr_mat.shape
    value = 0
    for i in range(col):
        value = value + (2**i) * arr[i]
    return value


def ddh_compactbit(b):
    b_mat = np.asmatrix(b)
    [nSamples, nbits] = b_mat.shape
    nwords = int(np.ceil(float(nbits) / 8))
    cb = np.zeros((nSamples, nwords), dtype=np.uint8)
    for i in range(nSamples):
        for j in range(nwords):
            temp = b[i, j * 8 : (j + 1) * 8]
            value = ddh_convert(temp)
            cb[i, j] = value
    return cb


def ddh_hamming_dist(B1, B2):
    n1 = B1.shape[0]
    n2, nwords = B2.shape
    Dh = np.zeros((n1, n2), dtype=np.uint16)
    for i in range(n1):
        for j in range(nwords):
            y = (B1[i, j] ^ B2[:, j]).T
            Dh[i, :] = Dh[i, :] + BIT_IN_CHAR[y]
    return Dh


def ddh_cat_apcal(traingnd, testgnd, IX, top_N):
    [numtrain, numtest] = IX.shape
    apall = np.zeros(numtest)
    for i in range(numtest):
        y = IX[:, i]
        x = 0
        p = 0
        new_label = np.zeros((1, numtrain))
        new_label[traingnd.T == testgnd[i]] = 1
        num_retuen_NN = numtrain
        for j in range(num_retuen_NN):
            if new_label[0, y[j]] == 1:
                x = x + 1
                p = p + float(x) / (j + 1)
        if p == 0:
            apall[i] = 0
        else:
            apall[i] = p / x
    pall = np.zeros(numtest)
    for ii in range(numtest):
        y_1 = IX[:, ii]
        n = 0
        new_label_1 = np.zeros((1, numtrain))
        new_label_1[traingnd.T == testgnd[ii]] = 1
        for jj in range(top_N):
            if new_label_1[0, y_1[jj]] == 1:
                n = n + 1
        pall[ii] = 1.0 * n / top_N
    ap = np.mean(apall)
    p_topN = np.mean(pall)
    return ap, p_topN


def ddh_evaluate_macro(Rel, Ret):
    Rel_mat = np.asmatrix(Rel)
    numTest = Rel_mat.shape[1]
    precisions = np.zeros((numTest))  # noqa: UP034 - as released
    recalls = np.zeros((numTest))  # noqa: UP034 - as released
    retrieved_relevant_pairs = (Rel & Ret)
    for j in range(numTest):
        retrieved_relevant_num = len(retrieved_relevant_pairs[:, j][np.nonzero(retrieved_relevant_pairs[:, j])])
        retrieved_num = len(Ret[:, j][np.nonzero(Ret[:, j])])
        relevant_num = len(Rel[:, j][np.nonzero(Rel[:, j])])
        if retrieved_num:
            precisions[j] = float(retrieved_relevant_num) / retrieved_num
        else:
            precisions[j] = 0.0
        if relevant_num:
            recalls[j] = float(retrieved_relevant_num) / relevant_num
        else:
            recalls[j] = 0.0
    p = np.mean(precisions)
    r = np.mean(recalls)
    return p, r


def ddh_model_predict_tail(query, query_labels, gallery, gallery_labels, kind=None):
    """DDH.py model_predict from the sign codes on (TOP_K = 50, hammRadius = 2); ``kind``
    None is the released default argsort, "stable" the gallery-order ranking."""
    from numpy.matlib import repmat  # as DDH.py (importing it warns)

    train_data_y = gallery_labels.reshape(-1, 1)
    test_data_y = query_labels.reshape(-1, 1)
    train_y_rep = repmat(train_data_y, 1, test_data_y.shape[0])
    test_y_rep = repmat(test_data_y.T, train_data_y.shape[0], 1)
    cateTrainTest = (train_y_rep == test_y_rep)
    train_data_y = np.asarray(train_data_y + 1, dtype=int)
    test_data_y = np.asarray(test_data_y + 1, dtype=int)
    B = ddh_compactbit(gallery.astype(np.float32))
    tB = ddh_compactbit(query.astype(np.float32))
    hammRadius = 2
    hammTrainTest = ddh_hamming_dist(tB, B).T
    Ret = (hammTrainTest <= hammRadius + 0.000001)
    [Pre, Rec] = ddh_evaluate_macro(cateTrainTest, Ret)
    HammingRank = np.argsort(hammTrainTest, axis=0) if kind is None else np.argsort(hammTrainTest, axis=0, kind=kind)
    [MAP, p_topN] = ddh_cat_apcal(train_data_y, test_data_y, HammingRank, 50)
    return {"map": MAP, "p50": p_topN, "precision_r2": Pre, "recall_r2": Rec}


def ddh_pipeline(query, query_labels, gallery, gallery_labels):
    B = ddh_compactbit(gallery.astype(np.float32))
    tB = ddh_compactbit(query.astype(np.float32))
    hamm = ddh_hamming_dist(tB, B).T
    ranking = np.argsort(hamm, axis=0, kind="stable")
    expected, _ = ddh_cat_apcal(gallery_labels.reshape(-1, 1) + 1, query_labels.reshape(-1, 1) + 1, ranking, 1)
    return expected, hamm.T


@pytest.fixture(autouse=True)
def _needs_wrapping_cast():
    probe = np.zeros(1, dtype=np.uint8)
    probe[0] = np.float32(-5.0)
    if probe[0] != 251:
        pytest.skip("this platform saturates negative float -> uint8 casts; the DDH bug needs x86-64 wrapping")


def clustered_codes(rng, classes, per_class, bits, flip):
    centers = rng.choice(np.array([-1, 1], dtype=np.int8), size=(classes, bits))
    labels = np.repeat(np.arange(classes), per_class)
    codes = centers[labels].copy()
    codes[rng.random(codes.shape) < flip] *= -1
    return codes, labels


@pytest.mark.parametrize("bits", [12, 24, 36, 48])
def test_map_legacy_matches_literal_ddh_code(bits):
    rng = np.random.default_rng(bits)
    gallery, gl = clustered_codes(rng, 6, 12, bits, 0.25)
    query, ql = clustered_codes(rng, 6, 2, bits, 0.25)
    expected, ddh_distances = ddh_pipeline(query, ql, gallery, gl)
    ev = evaluate(query, ql, gallery, gl, device="cpu", plugin_metrics=registered_metrics(default_host()))
    assert ev.metrics["map_legacy"] == pytest.approx(expected, abs=1e-12)
    assert (legacy_compactbit_bytes(gallery) == ddh_compactbit(gallery.astype(np.float32))).all()
    # the effective metric stated in the reference
    differ = query[:, None, :] != gallery[None, :, :]
    counted = np.ones(bits, dtype=bool)
    counted[7::8] = False
    effective = differ[:, :, counted].sum(axis=2)
    if bits % 8:
        last = bits - 1
        effective = effective - differ[:, :, last] + 4 * differ[:, :, last]
    assert (ddh_distances == effective).all()
    assert not np.isclose(ev.metrics["map_legacy"], ev.metrics["map_stable"])


ARGSORT_METRICS = ["map_legacy_argsort", "precision_at_50_legacy_argsort"]


def query_gallery(rng, bits, flip):
    """9 identities from shared centres: 3 queries and 40 gallery codes each, except
    identity 8, which has 3 queries and no gallery code."""
    codes, labels = clustered_codes(rng, 9, 43, bits, flip)
    is_query = np.tile(np.arange(43) < 3, 9)
    keep = is_query | (labels != 8)
    return codes[keep & is_query], labels[keep & is_query], codes[keep & ~is_query], labels[keep & ~is_query]


@pytest.mark.parametrize("bits", [12, 24, 36, 48])
@pytest.mark.parametrize("noise", ["overlapping", "tight"])
def test_legacy_family_equals_the_released_functions_exactly(bits, noise):
    rng = np.random.default_rng(100 + bits)
    # overlapping identities (many ties across identities) or tight ones (full radius-2 balls)
    query, ql, gallery, gl = query_gallery(rng, bits, 0.25 if noise == "overlapping" else 3 / bits)
    released = ddh_model_predict_tail(query, ql, gallery, gl)
    stable = ddh_model_predict_tail(query, ql, gallery, gl, kind="stable")
    ev = evaluate(query, ql, gallery, gl, EvaluationSpec(opt_in_metrics=ARGSORT_METRICS), device="cpu",
                  plugin_metrics=registered_metrics(default_host(), opt_in_metrics=ARGSORT_METRICS))
    m = ev.metrics
    assert m["map_legacy_argsort"] == released["map"]
    assert m["precision_at_50_legacy_argsort"] == released["p50"]
    assert m["precision_r2_legacy"] == released["precision_r2"]
    assert m["recall_r2_legacy"] == released["recall_r2"]
    assert m["precision_at_50_legacy"] == stable["p50"]
    assert m["map_legacy"] == pytest.approx(stable["map"], abs=1e-12)  # summed in gallery order
    assert ev.per_query["ap_legacy_argsort"].shape == (len(ql),)
    # guards: the released order is not the stable one, the legacy ball is not the true one
    if noise == "overlapping":
        assert released["map"] != stable["map"]
        if bits == 12:  # longer codes leave fewer ties at the cut after 50
            assert released["p50"] != stable["p50"]
    else:
        assert (m["precision_r2_legacy"], m["recall_r2_legacy"]) != (m["precision_r2"], m["recall_r2"])


def test_argsort_metrics_are_opt_in():
    rng = np.random.default_rng(0)
    gallery, gl = clustered_codes(rng, 3, 30, 12, 0.3)
    query, ql = clustered_codes(rng, 3, 2, 12, 0.3)
    default = evaluate(query, ql, gallery, gl, device="cpu", plugin_metrics=registered_metrics(default_host())).metrics
    assert not set(ARGSORT_METRICS) & set(default)
    assert {"map_legacy", "precision_at_50_legacy", "precision_r2_legacy", "recall_r2_legacy"} <= set(default)
    assert set(registered_metrics(default_host(), ARGSORT_METRICS)) == set(ARGSORT_METRICS)  # by name (bench eval --metric)
    for wrong in ("map_legacy", "map_legacy_sorted"):
        with pytest.raises(BenchError, match="is not an opt-in metric; the opt-in metrics are map_legacy_argsort"):
            registered_metrics(default_host(), opt_in_metrics=[wrong])
