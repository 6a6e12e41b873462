"""Losses: one registered entry each, computed by torch.nn.functional.

A loss is a term of `train.loss`: `loss: cross_entropy`, or a weighted list over
named outputs and data fields (a VAE's ELBO):

    loss:
      - bce: {reduction: sum}        # reconstruction, summed over pixels, averaged over the batch
        output: recon
        target: x
      - kl_normal: {}                 # reads the outputs `mu` and `logvar`
        weight: 1.0                   # β (Higgins et al., 2017)

Term keys: `output` (the network output it reads; the only one by default), `target`
(the data field it compares with; `y` by default), `weight` (1 by default) and
`name` (the name its value is logged under; the loss's by default).
Torch is imported inside `compute` only.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from .registry import Args, Entry, Registry

Reduction = Literal["mean", "sum", "batchmean"]


class Loss(Entry):
    """A loss: `compute(a, outputs, target)` -> a scalar tensor.

    `target` says what the data field must hold: "class" (class ids, int64 of the
    output's shape without its class dim), "float" (values reshaped to the output's
    shape), or None (no target: the loss reads outputs only).
    """

    target: ClassVar[str | None] = "float"

    def outputs(self, a: Any) -> tuple[str, ...]:
        """The outputs it reads by name, or () for the term's `output`."""
        return ()

    def compute(self, a: Any, outputs: list, target: Any) -> Any:
        raise NotImplementedError

    def best_output(self, a: Any, output: Any, target: Any) -> Any:
        """The output that fits `target` best, shaped as `output`: for a loss on values, the target itself
        (the loss there is its floor; for a loss on logits, an upper bound of it); None for a loss on class
        ids, whose floor is 0 (the true class's score growing without bound)."""
        return _values(output, target) if self.target == "float" else None


LOSSES: Registry[Loss] = Registry("loss")


class _Reduced(Args):
    reduction: Reduction = "mean"


def _reduce(value, reduction: str, batch: int):
    """`mean` over every element (torch's default), `sum`, or `batchmean` (the sum divided by the batch size)."""
    if reduction == "mean":
        return value.mean()
    return value.sum() / (batch if reduction == "batchmean" else 1)


def _values(output, target):
    """The target as floats in the output's shape (a [N] class-id field against a [N, 1] output, say)."""
    return target.to(output.dtype).reshape(output.shape)


@LOSSES.register
class MSE(Loss):
    """Mean squared error, (ŷ − y)²: regression and reconstruction (torch.nn.functional.mse_loss).

    Args: `reduction`: `mean` (over every element, torch's default), `sum`, or
    `batchmean` (summed over a sample's elements, averaged over the batch).

    Example: `loss: mse` or `- mse: {reduction: batchmean}` with `output: recon, target: x`
    """

    name = "mse"
    Args = _Reduced
    main_arg = "reduction"

    def compute(self, a, outputs, target):
        import torch.nn.functional as F

        out = outputs[0]
        return _reduce(F.mse_loss(out, _values(out, target), reduction="none"), a.reduction, out.shape[0])


@LOSSES.register
class L1(Loss):
    """Mean absolute error, |ŷ − y| (torch.nn.functional.l1_loss); robust to outliers.

    Args: `reduction` as for `mse`.

    Example: `loss: l1`
    """

    name = "l1"
    Args = _Reduced
    main_arg = "reduction"

    def compute(self, a, outputs, target):
        import torch.nn.functional as F

        out = outputs[0]
        return _reduce(F.l1_loss(out, _values(out, target), reduction="none"), a.reduction, out.shape[0])


class CrossEntropyArgs(Args):
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    weight: list[Annotated[float, Field(ge=0)]] | None = None


@LOSSES.register
class CrossEntropy(Loss):
    """Cross-entropy of class scores (logits) against class ids (torch.nn.functional.cross_entropy).

    The output holds one raw score per class, `[C]` (or `[C, *]` per position);
    softmax is part of the loss, so the network ends in a linear layer, not a softmax.

    Args:
        label_smoothing: ε in [0, 1): the target puts 1 − ε on the true class and
            spreads ε evenly (Szegedy et al., 2016).
        weight: one weight per class, for imbalanced classes.

    Example: `loss: {cross_entropy: {label_smoothing: 0.1}}`
    """

    name = "cross_entropy"
    target = "class"
    Args = CrossEntropyArgs
    main_arg = "label_smoothing"

    def compute(self, a, outputs, target):
        import torch
        import torch.nn.functional as F

        out = outputs[0]
        weight = torch.tensor(a.weight, dtype=out.dtype, device=out.device) if a.weight else None
        return F.cross_entropy(out, target, weight=weight, label_smoothing=a.label_smoothing)

    def best_output(self, a, output, target):
        """With label smoothing ε over C classes, the scores log q of the smoothed target q = (1 − ε)·onehot
        + ε/C: the cross-entropy H(q, p) = H(q) + KL(q ‖ p) is least at p = q, where it is q's entropy (Gibbs'
        inequality; with class `weight`s, a value it reaches, so an upper bound of its floor). None without
        smoothing: the floor is 0."""
        import torch.nn.functional as F

        eps = a.label_smoothing
        if not eps:
            return None
        classes = output.shape[1]
        onehot = F.one_hot(target.long(), classes).movedim(-1, 1).to(output.dtype)
        return (onehot * (1 - eps) + eps / classes).log()


@LOSSES.register
class NLL(Loss):
    """Negative log-likelihood of log-probabilities against class ids (torch.nn.functional.nll_loss).

    For networks that end in `log_softmax`; with raw scores use `cross_entropy`.

    Example: `loss: nll`
    """

    name = "nll"
    target = "class"

    def compute(self, a, outputs, target):
        import torch.nn.functional as F

        return F.nll_loss(outputs[0], target)


class BCEWithLogitsArgs(Args):
    reduction: Reduction = "mean"
    pos_weight: Annotated[float, Field(gt=0)] | None = None


@LOSSES.register
class BCEWithLogits(Loss):
    """Binary cross-entropy on raw scores, with the sigmoid inside for numerical stability
    (torch.nn.functional.binary_cross_entropy_with_logits).

    Targets are 0/1 labels or probabilities in [0, 1] of the output's shape.

    Args:
        reduction: as for `mse`.
        pos_weight: the weight of positive examples (> 1 raises recall).

    Example: `loss: bce_with_logits`
    """

    name = "bce_with_logits"
    Args = BCEWithLogitsArgs
    main_arg = "reduction"

    def compute(self, a, outputs, target):
        import torch
        import torch.nn.functional as F

        out = outputs[0]
        pos = None if a.pos_weight is None else torch.tensor(a.pos_weight, dtype=out.dtype, device=out.device)
        value = F.binary_cross_entropy_with_logits(out, _values(out, target), pos_weight=pos, reduction="none")
        return _reduce(value, a.reduction, out.shape[0])


@LOSSES.register
class BCE(Loss):
    """Binary cross-entropy of probabilities (torch.nn.functional.binary_cross_entropy): a
    sigmoid output against targets in [0, 1], as a VAE's Bernoulli decoder (Kingma & Welling, 2014).

    Args: `reduction` as for `mse`; `batchmean` (summed over pixels) is the ELBO's term.

    Example: `- bce: batchmean` with `output: recon, target: x`
    """

    name = "bce"
    Args = _Reduced
    main_arg = "reduction"

    def compute(self, a, outputs, target):
        import torch.nn.functional as F

        out = outputs[0]
        value = F.binary_cross_entropy(out.float(), _values(out, target).float(), reduction="none")
        return _reduce(value, a.reduction, out.shape[0])


class KLNormalArgs(Args):
    mu: str = "mu"
    logvar: str = "logvar"
    reduction: Reduction = "batchmean"


@LOSSES.register
class KLNormal(Loss):
    """KL divergence of N(μ, σ²) from N(0, I): a VAE's regularizer, read from its `mu` and `logvar` outputs.

    KL = −½ Σ (1 + logvar − μ² − exp(logvar)), summed over the latent dims
    (Kingma & Welling, "Auto-Encoding Variational Bayes", 2014, Appendix B).

    Args:
        mu, logvar: the names of the outputs holding μ and log σ².
        reduction: `batchmean` (the sum per sample, averaged over the batch: the ELBO's
            term, the default), `mean` (over every element) or `sum`.

    Example: `- kl_normal: {}` with `weight: 1.0` (β)
    """

    name = "kl_normal"
    target = None
    Args = KLNormalArgs

    def outputs(self, a):
        return (a.mu, a.logvar)

    def compute(self, a, outputs, target):
        mu, logvar = outputs
        value = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
        return _reduce(value, a.reduction, mu.shape[0])
