"""Losses beyond Gluon's: softmax cross-entropy with label smoothing.

Label smoothing (Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision",
section 7) trains against the target ``(1 - epsilon) * one_hot(y) + epsilon / K`` instead of the
one-hot label, over ``K`` classes, which keeps the network from growing its logits without bound.
"""
from __future__ import annotations

from typing import Optional

from mxnet.gluon.loss import Loss, _apply_weighting, _reshape_like

__all__ = ["LabelSmoothingSoftmaxCELoss"]


class LabelSmoothingSoftmaxCELoss(Loss):
    """Softmax cross-entropy against labels smoothed by ``epsilon``; a drop-in replacement for
    ``gluon.loss.SoftmaxCrossEntropyLoss`` (``train_ch6(..., loss=LabelSmoothingSoftmaxCELoss())``).

    With log-probabilities ``p = log_softmax(pred)`` over ``K`` classes the loss of an example is
    ``(1 - epsilon) * (-p[y]) + epsilon * mean_k(-p[k])``, the cross-entropy with the target
    ``(1 - epsilon) * one_hot(y) + epsilon / K``; ``K`` is not needed in advance, so the loss
    hybridizes. ``sample_weight`` (in the call) weighs the loss as in Gluon's losses. Needs numpy
    semantics (``npx.set_np()``, which importing the package turns on).

    Args:
        epsilon: the smoothing, in [0, 1] (default 0.1): the probability mass spread uniformly
            over the classes; 0 is the plain softmax cross-entropy.
        axis: the class axis of the predictions (default -1).
        sparse_label: labels are class indices (default); ``False`` takes probability labels
            (smoothed the same way).
        from_logits: the predictions are already log-probabilities (default False).
        weight: a global scalar weight of the loss, as in Gluon's losses; default ``None``, 1.
        batch_axis: the batch axis (default 0).
        **kwargs: passed to ``gluon.loss.Loss``.

    Raises:
        ValueError: for an ``epsilon`` outside [0, 1].
    """

    def __init__(self, epsilon: float = 0.1, *, axis: int = -1, sparse_label: bool = True,
                 from_logits: bool = False, weight: Optional[float] = None, batch_axis: int = 0,
                 **kwargs):
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) \
                or not 0 <= epsilon <= 1:
            raise ValueError(f"epsilon (the label smoothing) must be a number in [0, 1], e.g. "
                             f"0.1; got {epsilon!r}")
        super().__init__(weight, batch_axis, **kwargs)
        self._epsilon = float(epsilon)
        self._axis = axis
        self._sparse_label = sparse_label
        self._from_logits = from_logits

    @property
    def epsilon(self) -> float:
        """The smoothing: the probability mass spread uniformly over the classes."""
        return self._epsilon

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        log_prob = pred if self._from_logits else F.npx.log_softmax(pred, axis=self._axis)
        if self._sparse_label:
            nll = -F.npx.pick(log_prob, label, axis=self._axis, keepdims=True)
        else:
            label = _reshape_like(F, label, log_prob)
            nll = -(log_prob * label).sum(axis=self._axis, keepdims=True)
        uniform = -log_prob.mean(axis=self._axis, keepdims=True)
        loss = (1 - self._epsilon) * nll + self._epsilon * uniform
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return F.npx.batch_flatten(loss).mean(axis=1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(epsilon={self._epsilon})"
