"""Every loss entry (netspec/train/losses.py) against torch.nn.functional, or a hand computation."""

import pytest
import torch
import torch.nn.functional as F

from netspec.loader import parse_yaml
from netspec.train.config import LossTerm
from netspec.train.loop import Objective
from netspec.train.losses import LOSSES

N = 6
gen = torch.Generator().manual_seed(0)
LOGITS = torch.randn(N, 5, generator=gen)
CLASSES = torch.randint(0, 5, (N,), generator=gen)
SEQ_LOGITS = torch.randn(N, 5, 7, generator=gen)  # [C, T] per sample: a class per position
SEQ_CLASSES = torch.randint(0, 5, (N, 7), generator=gen)
VALUES = torch.randn(N, 3, 4, generator=gen)
TARGETS = torch.randn(N, 3, 4, generator=gen)
PROBS = torch.rand(N, 8, generator=gen)
BITS = (torch.rand(N, 8, generator=gen) > 0.5).float()
MU, LOGVAR = torch.randn(N, 4, generator=gen), torch.randn(N, 4, generator=gen)
WEIGHTS = [1.0, 2.0, 0.5, 0.0, 3.0]


def kl(mu, logvar):
    """KL(N(mu, exp(logvar)) ‖ N(0, 1)) per element, by hand: ½(σ² + μ² − 1 − log σ²)."""
    return 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar)


ROWS = [  # (loss as written, its outputs, target, the value torch (or the formula) gives)
    ("mse", [VALUES], TARGETS, F.mse_loss(VALUES, TARGETS)),
    ("mse: sum", [VALUES], TARGETS, F.mse_loss(VALUES, TARGETS, reduction="sum")),
    ("mse: batchmean", [VALUES], TARGETS, F.mse_loss(VALUES, TARGETS, reduction="sum") / N),
    ("mse", [VALUES[:, :1, 0]], CLASSES, F.mse_loss(VALUES[:, :1, 0], CLASSES[:, None].float())),  # ids as values
    ("l1", [VALUES], TARGETS, F.l1_loss(VALUES, TARGETS)),
    ("l1: {reduction: sum}", [VALUES], TARGETS, F.l1_loss(VALUES, TARGETS, reduction="sum")),
    ("l1: batchmean", [VALUES], TARGETS, F.l1_loss(VALUES, TARGETS, reduction="sum") / N),
    ("cross_entropy", [LOGITS], CLASSES, F.cross_entropy(LOGITS, CLASSES)),
    ("cross_entropy: 0.1", [LOGITS], CLASSES, F.cross_entropy(LOGITS, CLASSES, label_smoothing=0.1)),
    (f"cross_entropy: {{weight: {WEIGHTS}, label_smoothing: 0.2}}", [LOGITS], CLASSES,
     F.cross_entropy(LOGITS, CLASSES, weight=torch.tensor(WEIGHTS), label_smoothing=0.2)),
    ("cross_entropy", [SEQ_LOGITS], SEQ_CLASSES, F.cross_entropy(SEQ_LOGITS, SEQ_CLASSES)),
    ("nll", [LOGITS.log_softmax(1)], CLASSES, F.nll_loss(LOGITS.log_softmax(1), CLASSES)),
    ("bce", [PROBS], BITS, F.binary_cross_entropy(PROBS, BITS)),
    ("bce: batchmean", [PROBS], PROBS.flip(0), F.binary_cross_entropy(PROBS, PROBS.flip(0), reduction="sum") / N),
    ("bce_with_logits", [VALUES[:, 0]], BITS[:, :4], F.binary_cross_entropy_with_logits(VALUES[:, 0], BITS[:, :4])),
    ("bce_with_logits: {pos_weight: 3.0, reduction: sum}", [VALUES[:, 0]], BITS[:, :4],
     F.binary_cross_entropy_with_logits(VALUES[:, 0], BITS[:, :4], pos_weight=torch.tensor(3.0), reduction="sum")),
    ("kl_normal: {}", [MU, LOGVAR], None, kl(MU, LOGVAR).sum() / N),
    ("kl_normal: {reduction: mean}", [MU, LOGVAR], None, kl(MU, LOGVAR).mean()),
    ("kl_normal: {reduction: sum}", [MU, LOGVAR], None, kl(MU, LOGVAR).sum()),
]


def choice(text: str):
    source = parse_yaml(f"loss: {{{text}}}\n" if ":" in text else f"loss: {text}\n", "t.yaml")
    return LOSSES.parse(source.tree["loss"], ("loss",), source)


def test_every_loss_has_a_row():
    assert {choice(text).name for text, *_ in ROWS} == set(LOSSES)


@pytest.mark.parametrize("text, outputs, target, expected", ROWS, ids=[r[0] for r in ROWS])
def test_loss_matches_torch(text, outputs, target, expected):
    c = choice(text)
    value = c.entry.compute(c.args, outputs, target)
    assert value.shape == () and value.dtype == torch.float32
    torch.testing.assert_close(value, expected)


def test_kl_normal_is_the_kl_divergence_of_the_gaussians():
    q = torch.distributions.Normal(MU, (LOGVAR / 2).exp())
    p = torch.distributions.Normal(torch.zeros_like(MU), torch.ones_like(MU))
    c = choice("kl_normal: {}")
    torch.testing.assert_close(c.entry.compute(c.args, [MU, LOGVAR], None),
                               torch.distributions.kl_divergence(q, p).sum(1).mean())


def test_kl_normal_reads_the_outputs_it_names():
    c = choice("kl_normal: {mu: m, logvar: lv}")
    assert c.entry.outputs(c.args) == ("m", "lv")


def test_bce_with_logits_pos_weight_weighs_positives_only():
    c, plain = choice("bce_with_logits: {pos_weight: 4.0}"), choice("bce_with_logits")
    zeros, ones = torch.zeros(N, 8), torch.ones(N, 8)
    x = VALUES.reshape(N, -1)[:, :8]
    assert c.entry.compute(c.args, [x], zeros) == pytest.approx(float(plain.entry.compute(plain.args, [x], zeros)))
    assert c.entry.compute(c.args, [x], ones) == pytest.approx(4 * float(plain.entry.compute(plain.args, [x], ones)))


def test_objective_weighs_its_terms_in_float32():
    terms = [LossTerm(choice("mse: batchmean"), "recon", ("recon",), "x", 1.0, ("loss", 0)),
             LossTerm(choice("kl_normal: {}"), "kl", ("mu", "logvar"), None, 0.25, ("loss", 1))]
    objective = Objective(terms, [t.outputs for t in terms])
    outs = {"recon": VALUES.bfloat16(), "mu": MU.bfloat16(), "logvar": LOGVAR.bfloat16()}
    total, values = objective(outs, {"x": TARGETS})
    assert all(v.dtype == torch.float32 for v in (total, *values.values()))
    torch.testing.assert_close(values["recon"], F.mse_loss(VALUES.bfloat16().float(), TARGETS, reduction="sum") / N)
    torch.testing.assert_close(total, values["recon"] + 0.25 * values["kl"])
