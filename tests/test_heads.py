"""Output heads (``jaxnn.heads``): which last layer each task and loss get, target encoding, class
read-out and the early-stopping score, decided once for the estimators and ``jaxnn-train``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import jaxnn
from jaxnn import heads
from jaxnn.losses import LOSSES


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_every_loss_gets_a_classification_head_from_its_facts(name, n_classes):
    loss = LOSSES[name]
    if loss.task == "binary" and n_classes > 2:
        with pytest.raises(ValueError, match=f"loss '{name}' is for two classes .* has 3 classes"):
            heads.classification_head(name, n_classes)
        return
    if loss.task == "regression" and loss.output_activation != "identity":  # the Poisson losses: counts, not classes
        with pytest.raises(ValueError, match=f"loss '{name}' is a regression loss on exp outputs"):
            heads.classification_head(name, n_classes)
        return
    head = heads.classification_head(name, n_classes)
    assert head.loss is loss and head.n_classes == n_classes and head.task == "classification"
    one_unit = loss.task != "categorical" and n_classes == 2
    assert head.units == (1 if one_unit else n_classes)
    assert head.output_activation == ("sigmoid" if one_unit else "softmax")
    # The activation lives in the last layer or in the link, never in both, never in neither.
    assert {head.layer_activation, head.link} == {"identity", head.output_activation}
    assert (head.link != "identity") == loss.from_logits


@pytest.mark.parametrize("name", LOSSES)
def test_regression_takes_regression_losses_only(name):
    loss = LOSSES[name]
    if loss.task != "regression":
        with pytest.raises(ValueError, match=f"loss '{name}' is a classification loss") as refused:
            heads.regression_head(name, 2)
        suggested = {other for other in LOSSES if f"'{other}'" in str(refused.value).split("; use ")[1]}
        assert suggested == {other for other, candidate in LOSSES.items() if candidate.task == "regression"}
        return
    head = heads.regression_head(name, 2)
    link = loss.output_activation if loss.from_logits else "identity"
    assert (head.units, head.layer_activation, head.link, head.n_classes) == (2, loss.last_layer_activation, link, 0)


def test_default_losses_are_the_stable_fused_ones():
    assert heads.classification_head(None, 3).loss is jaxnn.softmax_cross_entropy
    assert heads.classification_head(None, 2).loss is jaxnn.sigmoid_binary_cross_entropy
    assert heads.regression_head(None, 1).loss is jaxnn.squared_error  # scikit-learn MLP's
    with pytest.raises(ValueError, match="at least two classes"):
        heads.classification_head(None, 1)


def test_targets_and_read_out_round_trip():
    labels = np.array([2, 0, 1, 2])
    many = heads.classification_head(None, 3)
    np.testing.assert_array_equal(heads.encode_classes(labels, many), np.eye(3)[labels])
    np.testing.assert_array_equal(heads.class_indices(heads.encode_classes(labels, many), many), labels)
    binary = heads.classification_head(None, 2)
    np.testing.assert_array_equal(heads.encode_classes([1, 0], binary), [[1.0], [0.0]])
    logits = jnp.array([[-0.1], [0.2]])  # a logit head thresholds at 0 ...
    np.testing.assert_array_equal(heads.class_indices(logits, binary), [0, 1])
    probabilities = heads.classification_head("binary_cross_entropy", 2)  # ... a probability head at ½
    np.testing.assert_array_equal(heads.class_indices(jnp.array([[0.4], [0.6]]), probabilities), [0, 1])
    np.testing.assert_allclose(heads.predictions(logits, binary), 1 / (1 + np.exp(-np.asarray(logits))), rtol=1e-6)


def test_validation_score_is_weighted_accuracy_or_r2_and_hashable():
    head = heads.classification_head(None, 3)
    score = heads.ValidationScore(head)
    assert score == heads.ValidationScore(head) and hash(score) == hash(heads.ValidationScore(head))
    outputs = jnp.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 0.0]])
    targets = np.concatenate([np.eye(3)[[0, 1, 2]], [[1.0], [1.0], [2.0]]], axis=1)  # last column: weights
    assert float(score(outputs, jnp.asarray(targets))) == pytest.approx(2 / 4)
    regression = heads.ValidationScore(heads.regression_head(None, 1))
    y = jnp.array([[1.0, 1.0], [2.0, 1.0], [3.0, 0.0]])
    assert float(regression(jnp.array([[1.0], [2.0], [7.0]]), y)) == pytest.approx(1.0)  # the 0-weight row is out


def test_impossible_sizes_and_labels_are_refused():
    # heads of 0, -1 or 2.5 units were built; label -1 was one-hot encoded as the last class, 5 as a target of 5.0
    for build in (lambda: heads.regression_head(None, 0), lambda: heads.classification_head(None, 2.5)):
        with pytest.raises(ValueError, match=r"must be a positive integer"):
            build()
    three, two = heads.classification_head(None, 3), heads.classification_head(None, 2)
    for head, labels in ((three, [0, -1]), (three, [0, 3]), (two, [0, 5]), (two, [0.5, 1.0])):
        with pytest.raises(ValueError, match=r"class indices must be a 1-D array of whole numbers in \[0, "):
            heads.encode_classes(np.array(labels), head)
    np.testing.assert_array_equal(heads.encode_classes(np.array([2, 0]), three), [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(heads.encode_classes(np.array([1.0, 0.0]), two), [[1.0], [0.0]])


def test_read_outs_refuse_outputs_of_another_width():
    """Five columns for a three-class head gave class 4; a 1-D row was an IndexError about tuples."""
    head = heads.classification_head(None, 3)
    for outputs in (np.ones((2, 5)), np.ones(3)):
        for read_out in (heads.class_indices, heads.predictions):  # predictions gave a softmax over 5 columns
            with pytest.raises(ValueError, match=r"outputs must be \(n_samples, 3\)"):
                read_out(outputs, head)
    with pytest.raises(ValueError, match=r"outputs must be \(n_samples, 2\)"):
        heads.label_indicators(np.ones((2, 3)), heads.multilabel_head(None, 2))
    two = heads.classification_head(None, 2)  # one sigmoid unit on logits: 0 (probability ½) is class 0
    np.testing.assert_array_equal(heads.class_indices(np.array([[0.0], [1e-9], [-1.0]]), two), [0, 1, 0])
