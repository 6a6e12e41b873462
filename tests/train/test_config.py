"""The `train:` section checked like the network (netspec/train/config.py): every mistake one located SpecError,
independent ones reported together, no cascades, and never a crash."""

import copy
import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netspec
from netspec.cli import main
from netspec.errors import SpecError, SpecErrors
from netspec.train.augment import AUGMENTATIONS
from netspec.train.config import (
    check_fields,
    check_train,
    columns,
    input_fields,
    parse_train,
    validate_train,
)
from netspec.train.data import SOURCES, TRANSFORMS, Field
from netspec.train.losses import LOSSES
from netspec.train.optim import OPTIMIZERS, SCHEDULES

# Networks whose `train:` key is on line 6, so the section's first line is line 7 in every case.
MLP = "name: t\ninput: [64]\nlayers:\n  - linear: 10\n    name: fc\ntrain:\n"
FIVE = "name: t\ninput: [64]\nlayers:\n  - linear: 5\n    name: fc\ntrain:\n"
ONE = "name: t\ninput: [64]\nlayers:\n  - linear: 1\n    name: fc\ntrain:\n"
BIG = "name: t\ninput: [784]\nlayers:\n  - linear: 10\n    name: fc\ntrain:\n"
IMG = "name: t\ninput: [1, 8, 8]\nlayers:\n  - flatten\n  - linear: 10\ntrain:\n"
TWO = "name: t\ninputs: {a: [64], b: [64]}\nlayers:\n  - add: [a, b]\n  - linear: 10\ntrain:\n"
IDS = ("name: t\ninput: {shape: [64], dtype: int64}\ndescription: token ids\n"
       "layers: [{embedding: {num_embeddings: 10, embedding_dim: 4}}, flatten, {linear: 10}]\n#\ntrain:\n")
AE = ("name: ae\ninput: [64]\noutputs: [recon, mu, logvar]\n"
      "layers: [{linear: 4, name: mu}, {linear: 4, name: logvar, from: input}, {linear: 64, name: recon, from: mu}]\n"
      "description: an autoencoder's three outputs\ntrain:\n")
RELU = "name: t\ninput: [64]\nlayers:\n  - linear: 10\n  - {relu: null, name: act}\ntrain:\n"

# (network, train: body, line:col, message fragment, hint fragment or None)
CASES = [
    # misspelled keys, at the key, with did-you-mean (nested too) or where the key belongs
    (MLP, "  optimiser: sgd\n", "7:3", "unknown train key `optimiser`", "did you mean `optimizer`?"),
    (MLP, "  early_stopping: {patience: 3, monitr: val_loss}\n", "7:33", "unknown early_stopping key `monitr`",
     "did you mean `monitor`?"),
    (MLP, "  data: {dataset: digits, splt: [0.8, 0.1, 0.1]}\n", "7:27", "unknown data key `splt`",
     "did you mean `split`?"),
    (MLP, "  param_groups: [{parms: [fc]}]\n", "7:19", "unknown param_groups key `parms`", "did you mean `params`?"),
    (MLP, "  lr: 0.1\n", "7:3", "unknown train key `lr`", "`lr` is an optimizer argument"),
    (MLP, "  data: {batch_size: 8}\n", "7:10", "unknown data key `batch_size`", "`batch_size` belongs in `train`"),
    (MLP, "  patience: 3\n", "7:3", "unknown train key `patience`", "belongs in `train.early_stopping`"),
    (MLP, "  warmup_epochs: 1\n", "7:3", "unknown train key `warmup_epochs`", "belongs in `train.schedule`"),
    # wrong values, at the value, saying what was received and what is expected
    (MLP, "  epochs: ten\n", "7:11", "`epochs`: input should be a valid integer, got 'ten'", None),
    (MLP, "  batch_size: -5\n", "7:15", "`batch_size`: input should be greater than or equal to 1, got -5", None),
    (MLP, "  optimizer: {adam: {lr: fast}}\n", "7:26", "`lr`: input should be a valid number or 'auto', got 'fast'",
     None),
    (MLP, "  optimizer: {sgd: fast}\n", "7:20", "`lr`: input should be a valid number or 'auto', got 'fast'", None),
    (MLP, "  data: 5\n", "7:9", "`train.data` takes a mapping of dataset, split", None),
    (MLP, "  metrics: accuracy\n", "7:12", "`metrics`: input should be a valid list, got 'accuracy'", None),
    (MLP, "  device: gpu\n", "7:11", "unknown device `gpu`", "cuda:N"),
    # unknown registry choices and their arguments
    (MLP, "  optimizer: adma\n", "7:14", "unknown optimizer `adma`", "did you mean `adam`?"),
    (MLP, "  optimizer: {adma: {lr: 0.1}}\n", "7:15", "unknown optimizer `adma`", "did you mean `adam`?"),
    (MLP, "  optimizer: {sgd: {lr: 0.1, momentun: 0.9}}\n", "7:30", "unknown sgd argument `momentun`",
     "did you mean `momentum`?"),
    (MLP, "  optimizer: {adam: {betas: [0.9, 1.5]}}\n", "7:35", "`betas[1]`: input should be less than 1, got 1.5",
     None),
    (MLP, "  optimizer: {sgd: 0.1, adam: 0.1}\n", "7:14", "an optimizer is `name` or `{name: {args}}`", "known:"),
    (MLP, "  schedule: cosin\n", "7:13", "unknown schedule `cosin`", "did you mean `cosine`?"),
    (MLP, "  schedule: {step: {step_size: ten}}\n", "7:32", "`step_size`: input should be a valid integer", None),
    (MLP, "  loss: cross_entropyy\n", "7:9", "unknown loss `cross_entropyy`", "did you mean `cross_entropy`?"),
    (MLP, "  loss: {nll: 0.1}\n", "7:15", "loss `nll` takes no single argument", None),
    (MLP, "  data: {dataset: digit}\n", "7:19", "unknown data source `digit`", "did you mean `digits`?"),
    (MLP, "  data: {dataset: {digits: [3, 3]}}\n", "7:28", "each digit may be named once", None),
    (BIG, "  data: {transform: [{resise: [28, 28]}]}\n", "7:23", "unknown transform `resise`",
     "did you mean `resize`?"),
    (IMG, "  data: {augment: [random_rotaton]}\n", "7:20", "unknown augmentation `random_rotaton`",
     "did you mean `random_rotation`?"),
    (IMG, "  data: {augment: [{random_crop: {size: 8, pad: 1}}]}\n", "7:44", "unknown random_crop argument `pad`",
     "did you mean `padding`?"),
    # the section's own consistency
    (MLP, "  data: {split: [0.5, 0.1, 0.1]}\n", "7:17", "split fractions add up to 0.7, not 1", "[0.8, 0.1, 0.1]"),
    (MLP, "  data: {split: [0, 0.5, 0.5]}\n", "7:18", "the split leaves no samples to train on", None),
    (MLP, "  data: {split: [0.9, 0, 0.1]}\n", "7:23", "no validation samples, but the run watches `val_loss`",
     "train_loss"),
    (MLP, "  data: {split: [0.8, 0.1, 0.1, 0]}\n", "7:17", "`split`: list should have at most 3 items", None),
    (MLP, "  schedule: {one_cycle: {max_lr: 0.01}, warmup_epochs: 1}\n", "7:41", "has its own warm-up phase",
     "pct_start"),
    (MLP, "  schedule: {cosine: {}, warmup_epochs: 1, warmup_steps: 10}\n", "7:44", "by epochs or by steps, not both",
     None),
    (MLP, "  schedule: {cosine: {}, warmup_start_factor: 2}\n", "7:47", "less than or equal to 1, got 2", None),
    # a key written beside a component's name: a misspelled neighbour, or an argument that belongs inside
    (MLP, "  schedule: {cosine: {}, warmup_epoch: 1}\n", "7:26", "unknown schedule key `warmup_epoch`",
     "did you mean `warmup_epochs`?"),
    (MLP, "  schedule: {step: 3, gama: 0.5}\n", "7:23", "unknown schedule key `gama`",
     "did you mean `gamma`? `step`'s arguments go inside its mapping"),
    (MLP, "  optimizer: {adam: {}, lr: 1.0e-3}\n", "7:25", "`lr` is an argument of optimizer `adam`, written beside it",
     "`adam: {lr: ...}`"),
    (MLP, "  optimizer: {adam: {}, momentum: 0.9}\n", "7:25", "unknown optimizer key `momentum`",
     "an optimizer is `name` or `{name: {args}}`"),
    (MLP, "  loss: {cross_entropy: {}, weigth: 2}\n", "7:29", "unknown loss key `weigth`", "did you mean `weight`?"),
    (MLP, "  clip_grad_norm: 1.0\n  clip_grad_value: 0.5\n", "8:3", "clip gradients by norm or by value, not both",
     None),
    (MLP, "  metrics: [acc]\n", "7:13", "unknown metric `acc`", "metrics are `accuracy` and `topK`"),
    (MLP, "  metrics: [accuracyy]\n", "7:13", "unknown metric `accuracyy`", "did you mean `accuracy`?"),
    (MLP, "  metrics: [top0]\n", "7:13", "unknown metric `top0`", None),
    (MLP, "  metrics: [accuracy, top_3]\n", "7:23", "unknown metric `top_3`", "did you mean `top3`?"),
    (ONE, "  loss: mse\n  metrics: [accuracy]\n", "8:13", "metric `accuracy` needs class scores", "cross_entropy"),
    (MLP, "  early_stopping: {monitor: val_acc}\n", "7:29", "`val_acc` is not a column of this run's metrics.csv",
     "did you mean `val_accuracy`?"),
    (MLP, "  early_stopping: {monitor: val_top5}\n", "7:29", "`val_top5` is not a column", "add `top5` to `metrics`"),
    (MLP, "  schedule: {reduce_on_plateau: {monitor: val_mse}}\n", "7:43", "`val_mse` is not a column", "val_loss"),
    (MLP, "  loss: []\n", "7:9", "`loss` needs at least one term", None),
    (MLP, "  loss: [{mse: {}, l1: {}}]\n", "7:20", "a loss term names one loss", "output, target, weight, name"),
    (MLP, "  loss: [{weight: 2}]\n", "7:10", "this loss term names no loss", None),
    (MLP, "  loss: {cross_entropy: {}, weight: -1}\n", "7:37", "a loss weight is a number ≥ 0, got -1", None),
    (MLP, "  loss: {cross_entropy: {}, output: [a]}\n", "7:37", "`output` takes a name", None),
    (MLP, "  loss: {cross_entropy: {}, name: loss}\n", "7:35", "logged as `loss`, a metric's name", None),
    (AE, "  loss:\n    - {mse: {}, output: recon, target: x, name: rec}\n    - {l1: {}, output: recon, target: x, "
         "name: rec}\n", "9:48", "logged as `rec`, another term's name", None),
    (AE, "  loss: [{kl_normal: {}, target: x}]\n", "7:26", "`kl_normal` compares with no data field", None),
    (AE, "  loss: [{kl_normal: {}, output: mu}]\n", "7:26", "`kl_normal` reads the outputs `mu` and `logvar`", None),
    # against the network: outputs, targets, inputs, augmentations, layers
    (MLP, "  loss: {mse: {}, output: outpt}\n", "7:27", "loss `mse` reads output `outpt`, which the network lacks",
     "did you mean `output`?"),
    (AE, "  loss: [{kl_normal: {mu: mu, logvar: logvr}}]\n", "7:39", "reads output `logvr`", "did you mean `logvar`?"),
    (AE, "  loss: mse\n", "7:9", "the network has 3 outputs (recon, mu, logvar); say which loss `mse` reads",
     "output: recon"),
    (MLP, "  loss: mse\n", "7:9", "`mse` compares values, but the data's `y` holds class ids and output `output` is 10",
     "cross_entropy"),
    (FIVE, "  loss: cross_entropy\n", "7:9", "the data has 10 classes but output `output` has 5 scores",
     "`linear: 10`"),
    (MLP, "  loss: {cross_entropy: {}, target: x}\n", "7:9", "`cross_entropy` compares with class ids, but the data's "
     "`x` holds values", None),
    (MLP, "  loss: {cross_entropy: {}, target: z}\n", "7:37", "the data has no field `z`", "x, y"),
    (AE, "  loss: [{mse: {}, output: mu, target: x}]\n", "7:10", "the data's `x` is 1×8×8 per sample, which does not "
     "fit output `mu` 4", None),
    (BIG, "  epochs: 3\n", "6:1", "the data's `x` is 1×8×8 per sample, which does not fit input `input` 784",
     "{resize: [28, 28]}"),
    (BIG, "  data: {dataset: digits}\n", "7:19", "does not fit input `input` 784", "{resize: [28, 28]}"),
    (BIG, "  data: {transform: [{resize: [20, 20]}]}\n", "7:22", "the data's `x` is 1×20×20", "{resize: [28, 28]}"),
    (MLP, "  data: {transform: [{center_crop: [16, 16]}]}\n", "7:22", "transform `center_crop` cannot apply to the "
     "data's `x` (1×8×8 per sample): center_crop cuts 16×16 windows out of 8×8 images", None),
    (MLP, "  data: {transform: [grayscale_to_rgb, {resize: [4, 4]}]}\n", "7:40", "does not fit input", None),
    (MLP, "  data: {augment: [random_horizontal_flip]}\n", "7:20", "random_horizontal_flip cannot augment input "
     "`input` of shape 64: it works on images [C, H, W]", None),
    (IMG, "  data: {augment: [{color_jitter: {saturation: 0.2}}]}\n", "7:20", "saturation and hue need RGB images",
     None),
    (IMG, "  data: {augment: [{random_crop: [6, 6]}]}\n", "7:34", "`random_crop` takes no single argument", None),
    (IMG, "  data: {augment: [{random_crop: {size: 6}}]}\n", "7:20", "would change the input's 8×8 size", None),
    (MLP, "  data: {inputs: {img: x}}\n", "7:19", "`data.inputs` maps `img`, which is not an input of the network",
     "input"),
    (MLP, "  data: {inputs: {input: z}}\n", "7:26", "the data has no field `z` for input `input`", "x, y"),
    (MLP, "  data: {inputs: {input: y}}\n", "7:26", "input `input` takes float values (float32), but the data's `y` "
     "holds class ids", None),
    (IDS, "  epochs: 1\n", "6:1", "input `input` takes integer ids (int64), but the data's `x` holds float values",
     None),
    (TWO, "  epochs: 1\n", "6:1", "the network has 2 inputs (a, b); say which data field each reads",
     "inputs: {a: FIELD, b: FIELD}"),
    (TWO, "  data: {inputs: {a: x}}\n", "7:18", "input `b` gets no data", "b: FIELD"),
    (MLP, "  param_groups: [{params: [feature.*], lr: 0.01}]\n", "7:28", "`feature.*` matches no layer of the network",
     "fc"),
    (MLP, "  param_groups: [{params: [fcc]}]\n", "7:28", "`fcc` matches no layer", "did you mean `fc`?"),
    (RELU, "  param_groups: [{params: [act]}]\n", "7:28", "`act` matches only layers without trainable parameters",
     None),
    (MLP, "  metrics: [top20]\n", "7:13", "`top20` ranks the true class among the 20 highest scores, but output "
     "`output` has 10 scores", "at most 10"),
    (MLP, "  data: {dataset: {digits: [0, 1, 2]}}\n  metrics: [top5]\n", "8:13", "the data has 3 classes",
     "at most 3"),
]


def errors(text: str, file: str = "net.yaml") -> list[SpecError]:
    """validate_train's errors for a spec text (its network must be valid)."""
    spec = netspec.loads(text, file)
    try:
        validate_train(spec, netspec.analyze(spec))
    except SpecErrors as exc:
        return exc.errors
    return []


@pytest.mark.parametrize("net, body, where, message, hint", CASES, ids=[c[1].strip()[:60] for c in CASES])
def test_each_mistake_is_located(net, body, where, message, hint):
    found = errors(net + body)
    assert len(found) == 1, "\n".join(e.format() for e in found)
    err = found[0]
    assert message in err.message, err.format()
    assert f"{err.mark.line}:{err.mark.col}" == where, err.format()
    if hint:
        assert hint in (err.hint or ""), err.format()
    assert err.format(with_source=False).startswith(f"net.yaml:{where}: error: ")
    assert err.path[0] == "train"


def test_the_issue_example_is_no_longer_valid():
    found = errors(MLP.replace("train:\n", "") + "train: {epochs: 5, optimiser: sgd, lr: not-a-number}\n")
    assert [(e.mark.line, e.mark.col, e.message) for e in found] == [
        (6, 20, "unknown train key `optimiser`"), (6, 36, "unknown train key `lr`")]
    assert found[0].hint == "did you mean `optimizer`?" and "optimizer argument" in found[1].hint


def test_independent_mistakes_are_reported_in_one_run_in_source_order():
    body = ("  optimizer: adma\n"                                     # 7: registry
            "  epochs: ten\n"                                         # 8: value type
            "  early_stopping: {patience: 3, monitr: val_loss}\n"     # 9: nested key
            "  data: {splt: [0.8, 0.1, 0.1], transform: [{resize: [4, 4]}]}\n"  # 10: key; the resize misfits
            "  loss: {cross_entropy: {}, output: outpt}\n"            # 11: against the network
            "  device: gpu\n")                                        # 12: the section's own check
    found = errors(MLP + body)
    assert [(e.mark.line, e.mark.col) for e in found] == [(7, 14), (8, 11), (9, 33), (10, 10), (10, 45), (11, 37),
                                                           (12, 11)], "\n".join(e.format() for e in found)


@pytest.mark.parametrize("net, body, message", [
    # a misspelled transform is not also a misfit input
    (BIG, "  data: {transform: [{resise: [28, 28]}]}\n", "unknown transform `resise`"),
    # a misspelled `inputs` does not leave the two inputs unmapped
    (TWO, "  data: {inputz: {a: x, b: x}}\n", "unknown data key `inputz`"),
    # a misspelled input name in `inputs` is not also an input without data
    (MLP, "  data: {inputs: {inptu: x}}\n", "`data.inputs` maps `inptu`"),
    # a misspelled loss does not make `accuracy` a metric without class scores
    (MLP, "  loss: cross_entropyy\n  metrics: [accuracy]\n", "unknown loss `cross_entropyy`"),
    # a `metrics` that is not a list does not make `val_top5` an unknown column
    (MLP, "  metrics: 5\n  early_stopping: {monitor: val_top5}\n", "`metrics`: input should be a valid list"),
    # a `data` that is not a mapping does not check the default dataset against the network
    (BIG, "  data: [digits]\n", "`train.data` takes a mapping"),
    # a misspelled required key is not also missing
    (MLP, "  param_groups: [{parms: [fc], lr: 0.1}]\n", "unknown param_groups key `parms`"),
    # a misspelled `loss` is not the default loss checked against a regression output
    (ONE, "  losss: mse\n", "unknown train key `losss`"),
    # a misspelled `early_stopping` does not leave the default monitor `val_loss` watched
    (MLP, "  data: {split: [0.9, 0, 0.1]}\n  early_stoping: {monitor: train_loss}\n",
     "unknown train key `early_stoping`"),
    # a misspelled data source is not checked against anything
    (BIG, "  data: {dataset: digitz}\n  loss: mse\n", "unknown data source `digitz`"),
])
def test_one_mistake_is_reported_once(net, body, message):
    found = errors(net + body)
    assert [e.message for e in found if message in e.message] and len(found) == 1, \
        "\n".join(e.format() for e in found)


def test_param_group_indices_survive_a_group_with_a_mistake():
    found = errors(MLP + "  param_groups:\n    - {parms: [fc]}\n    - {params: [nope]}\n")
    assert [(e.mark.line, e.message) for e in found] == [
        (8, "unknown param_groups key `parms`"), (9, "`nope` matches no layer of the network")]


@pytest.mark.parametrize("pattern", ["fc", "f*", "fc.weight", "*.bias", "*"])
def test_param_group_globs_may_name_layers_or_their_parameters(pattern):
    assert errors(MLP + f"  param_groups: [{{params: ['{pattern}'], lr: 0.01}}]\n") == []


# --- valid sections: every registry entry ----------------------------------------------------------------------

VALID = {  # registry -> entry -> (network, train: body)
    SOURCES: {
        "digits": (MLP, "  data: {dataset: {digits: {classes: [0, 1, 2]}}}\n"),
        "mnist1d": ("name: t\ninput: [1, 40]\nlayers: [flatten, {linear: 10}]\n#\n#\ntrain:\n",
                    "  data: {dataset: {mnist1d: {num_samples: 100}}}\n"),
        "npz": (MLP, "  data: {dataset: {npz: data.npz}}\n"),
        "npy": (MLP, "  data: {dataset: {npy: {x: x.npy, y: y.npy}}}\n"),
        "csv": (MLP, "  data: {dataset: {csv: {path: iris.csv, target: species, header: true}}}\n"),
        "image_folder": (IMG, "  data: {dataset: {image_folder: {root: imgs, size: [8, 8], mode: L}}}\n"),
        "synthetic": (IMG, "  data: {dataset: {synthetic: {num_samples: 64, classes: 10, shape: [1, 8, 8]}}}\n"),
    },
    TRANSFORMS: {
        "resize": (BIG, "  data: {transform: [{resize: [28, 28]}]}\n"),
        "center_crop": ("name: t\ninput: [16]\nlayers: [{linear: 10}]\n#\n#\ntrain:\n",
                        "  data: {transform: [{center_crop: [4, 4]}]}\n"),
        "grayscale_to_rgb": ("name: t\ninput: [3, 8, 8]\nlayers: [flatten, {linear: 10}]\n#\n#\ntrain:\n",
                             "  data: {transform: [grayscale_to_rgb]}\n"),
    },
    AUGMENTATIONS: {
        "random_horizontal_flip": (IMG, "  data: {augment: [random_horizontal_flip]}\n"),
        "random_vertical_flip": (IMG, "  data: {augment: [{random_vertical_flip: 0.2}]}\n"),
        "random_rotation": (IMG, "  data: {augment: [{random_rotation: [-10, 10]}]}\n"),
        "random_crop": (IMG, "  data: {augment: [{random_crop: {size: [8, 8], padding: [1, 2]}}]}\n"),
        "color_jitter": (IMG, "  data: {augment: [{color_jitter: {brightness: 0.2, contrast: [0.9, 1.1]}}]}\n"),
        "random_contrast": (IMG, "  data: {augment: [{random_contrast: 0.3}]}\n"),
        "gaussian_noise": (MLP, "  data: {augment: [{gaussian_noise: {sigma: 0.05}}]}\n"),
        "random_erasing": (IMG, "  data: {augment: [{random_erasing: {p: 0.5, scale: [0.02, 0.2]}}]}\n"),
    },
    LOSSES: {
        "cross_entropy": (MLP, "  loss: {cross_entropy: {label_smoothing: 0.1}}\n  metrics: [accuracy, top5]\n"),
        "nll": (MLP, "  loss: nll\n"),
        "mse": (ONE, "  loss: mse\n"),
        "l1": (AE, "  loss: [{l1: sum, output: recon, target: x}]\n"),
        "bce": (AE, "  loss: [{bce: batchmean, output: recon, target: x}]\n"),
        "bce_with_logits": (ONE, "  loss: {bce_with_logits: {pos_weight: 2.0}}\n"),
        "kl_normal": (AE, "  loss:\n    - {bce: batchmean, output: recon, target: x}\n"
                          "    - {kl_normal: {}, weight: 0.5}\n  early_stopping: {monitor: val_kl_normal}\n"),
    },
    OPTIMIZERS: {
        "sgd": (MLP, "  optimizer: {sgd: {lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 5.0e-4}}\n"),
        "adam": (MLP, "  optimizer: {adam: {lr: 1, betas: [0.9, 0.99]}}\n"),
        "adamw": (MLP, "  optimizer: {adamw: 3.0e-4}\n"),
        "rmsprop": (MLP, "  optimizer: rmsprop\n  param_groups: [{params: [fc], lr: 0.01, weight_decay: 0}]\n"),
    },
    SCHEDULES: {
        "constant": (MLP, "  schedule: {warmup_steps: 10, warmup_start_factor: 0.5}\n"),
        "step": (MLP, "  schedule: {step: 10}\n"),
        "multistep": (MLP, "  schedule: {multistep: {milestones: [3, 6], gamma: 0.5}, warmup_epochs: 1}\n"),
        "exponential": (MLP, "  schedule: {exponential: 0.95}\n"),
        "cosine": (MLP, "  schedule: {cosine: {T_max: 5}, warmup_epochs: 1}\n"),
        "one_cycle": (MLP, "  schedule: {one_cycle: {max_lr: 0.01}}\n  clip_grad_value: 1\n"),
        "reduce_on_plateau": (MLP, "  schedule: {reduce_on_plateau: {monitor: val_accuracy, patience: 2}}\n"),
    },
}
ROWS = [(registry, name, *row) for registry, rows in VALID.items() for name, row in rows.items()]


def test_every_registry_entry_has_a_valid_row():
    for registry, rows in VALID.items():
        assert set(rows) == set(registry), registry.kind


@pytest.mark.parametrize("registry, name, net, body", ROWS, ids=[f"{r.kind}-{n}" for r, n, *_ in ROWS])
def test_valid_sections_of_every_entry_parse_and_check(registry, name, net, body):
    spec = netspec.loads(net + body, "net.yaml")
    analysis = netspec.analyze(spec)
    validate_train(spec, analysis)
    config = parse_train(spec)
    check_train(config, analysis, spec)
    chosen = {SOURCES: [config.dataset], TRANSFORMS: config.transform, AUGMENTATIONS: config.augment,
              LOSSES: [t.choice for t in config.loss], OPTIMIZERS: [config.optimizer],
              SCHEDULES: [config.schedule.choice] if config.schedule else []}[registry]
    assert name in [c.name for c in chosen]


def test_a_full_section_parses_into_what_the_trainer_reads():
    body = ("  data: {dataset: digits, split: [0.7, 0.2, 0.1], augment: [{gaussian_noise: 0.1}], inputs: {input: x}}\n"
            "  loss: {cross_entropy: 0.1, name: ce}\n  optimizer: {sgd: {lr: 0.1, momentum: 0.9}}\n"
            "  param_groups: [{params: [fc], lr: 0.01}]\n  schedule: {cosine: {}, warmup_epochs: 2}\n"
            "  epochs: 3\n  early_stopping: {monitor: val_top3, patience: 2}\n  metrics: [accuracy, top3]\n")
    spec = netspec.loads(MLP + body, "net.yaml")
    config = parse_train(spec)
    (term,) = config.loss
    assert (term.name, term.outputs, term.target, term.weight, term.path) == ("ce", (None,), "y", 1.0,
                                                                               ("train", "loss"))
    assert config.classification and config.metrics == ["accuracy", "top3"]
    assert config.schedule.choice.name == "cosine" and config.schedule.warmup_epochs == 2
    assert config.optimizer.args.momentum == 0.9 and config.args.param_groups[0].lr == 0.01
    assert input_fields(config, {"input": (64,)}) == {"input": "x"}
    assert columns(config) == {f"{s}_{c}" for s in ("train", "val") for c in ("loss", "ce", "accuracy", "top3")}
    check_train(config, netspec.analyze(spec), spec)


def test_loss_terms_of_one_loss_are_numbered():
    body = ("  loss:\n    - {mse: {}, output: recon, target: x}\n    - {mse: {}, output: mu, target: z}\n"
            "    - {kl_normal: {}}\n")
    config = parse_train(netspec.loads(AE + body, "net.yaml"))
    assert [t.name for t in config.loss] == ["mse_0", "mse_1", "kl_normal"]
    assert [t.outputs for t in config.loss] == [("recon",), ("mu",), ("mu", "logvar")]
    assert config.loss[2].target is None and not config.classification and config.metrics == []


def test_overrides_are_checked_too():
    spec = netspec.loads(MLP + "  optimizer: {sgd: {lr: 0.1}}\n", "net.yaml")
    assert parse_train(spec, {"optimizer.sgd.lr": 0.5}).optimizer.args.lr == 0.5
    with pytest.raises(SpecErrors, match="`epochs`: input should be a valid integer"):
        parse_train(spec, {"epochs": "ten"})


def test_no_section_is_the_default_one():
    spec = netspec.loads(MLP.replace("train:\n", ""), "net.yaml")
    config = parse_train(spec)
    assert config.dataset.name == "digits" and config.loss[0].name == "cross_entropy"
    assert config.optimizer.name == "adam" and config.schedule is None and config.metrics == ["accuracy"]


# --- fields known only once loaded ----------------------------------------------------------------------------


def test_check_fields_checks_loaded_fields_at_the_sections_lines():
    spec = netspec.loads(MLP + "  data: {dataset: {npz: data.npz}}\n  metrics: [top5]\n", "net.yaml")
    config, analysis = parse_train(spec), netspec.analyze(spec)
    check_train(config, analysis, spec)  # nothing known about the fields yet
    check_fields(config, analysis, spec, {"x": Field((8, 8), "float"), "y": Field((), "class", 10)})
    with pytest.raises(SpecErrors) as info:
        check_fields(config, analysis, spec, {"x": Field((5,), "float"), "y": Field((), "class", 3)})
    assert [(e.mark.line, e.mark.col, e.message) for e in info.value.errors] == [
        (7, 19, "the data's `x` is 5 per sample, which does not fit input `input` 64"),
        (8, 13, "`top5` ranks the true class among the 5 highest scores, but the data has 3 classes")]
    with pytest.raises(SpecErrors, match="the data has 12 classes but output `output` has 10 scores"):
        check_fields(config, analysis, spec, {"x": Field((64,), "float"), "y": Field((), "class", 12)})
    with pytest.raises(SpecErrors, match="the data has no field `y` for loss `cross_entropy`"):
        check_fields(config, analysis, spec, {"x": Field((64,), "float"), "label": Field((), "class", 10)})


# --- the command line -----------------------------------------------------------------------------------------


def test_validate_exit_codes(tmp_path, capsys):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(MLP + "  loss: cross_entropy\n  optimizer: {adam: 1.0e-3}\n")
    bad.write_text(MLP + "  optimizer: adma\n")
    assert main(["validate", str(good)]) == 0
    assert "good.yaml: ok" in capsys.readouterr().out
    assert main(["validate", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:7:14: error: unknown optimizer `adma`" in err and "hint: did you mean `adam`?" in err
    assert "   7 |   optimizer: adma" in err and "Traceback" not in err


def test_validate_reports_a_transform_that_does_not_apply_instead_of_crashing(tmp_path, capsys):
    path = tmp_path / "net.yaml"
    path.write_text(MLP + "  data: {transform: [{center_crop: [16, 16]}]}\n")
    assert main(["validate", str(path)]) == 1
    assert f"{path}:7:22: error: transform `center_crop` cannot apply" in capsys.readouterr().err


# --- random mutations: a located error or a valid section, never a crash --------------------------------------

BASE = {
    "data": {"dataset": {"digits": {"classes": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}, "split": [0.8, 0.1, 0.1],
             "normalize": True, "transform": [{"resize": [8, 8]}],
             "augment": [{"random_crop": {"size": 8, "padding": 1}}, {"gaussian_noise": 0.05}],
             "inputs": {"input": "x"}},
    "loss": [{"cross_entropy": {"label_smoothing": 0.1}, "weight": 1.0, "name": "ce", "output": "output",
              "target": "y"}],
    "optimizer": {"sgd": {"lr": 0.1, "momentum": 0.9}},
    "param_groups": [{"params": ["conv"], "lr": 0.01}],
    "schedule": {"cosine": {"T_max": 3}, "warmup_epochs": 1},
    "epochs": 3, "batch_size": 32, "clip_grad_norm": 1.0,
    "early_stopping": {"monitor": "val_top3", "patience": 2},
    "metrics": ["accuracy", "top3"],
}
CNN = {"name": "t", "input": [1, 8, 8], "layers": [
    {"conv2d": {"out_channels": 4, "kernel_size": 3, "padding": 1}, "name": "conv"}, "relu", "flatten",
    {"linear": 10, "name": "fc"}]}
VALUES = ["fast", "", -1, -0.5, 0, 2, 1.5, [1, "a"], [], {}, {"x": 1}, None, True, "val_loss", "x", 10 ** 6]


def _paths(tree, path=()):
    yield path
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _paths(value, path + (key,))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _paths(value, path + (i,))


PATHS = [p for p in _paths(BASE) if p]


def _mutate(tree, path, how, value):
    parent = tree
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "rename" and isinstance(parent, dict):
        parent[f"{last}{value if isinstance(value, str) and value else 'x'}"] = parent.pop(last)
    elif how == "drop":
        del parent[last]
    else:
        parent[last] = copy.deepcopy(value)  # not shared: a value put inside itself would be an alias cycle


def test_the_base_of_the_mutations_is_valid():
    assert errors(yaml.safe_dump({**CNN, "train": BASE}, sort_keys=False)) == []


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(["rename", "replace", "replace", "drop"]),
                          st.sampled_from(VALUES)), min_size=1, max_size=3))
def test_mutated_sections_validate_or_fail_with_located_errors(mutations):
    train = json.loads(json.dumps(BASE))
    for path, how, value in mutations:
        try:
            _mutate(train, path, how, value)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced the place
    text = yaml.safe_dump({**CNN, "train": train}, sort_keys=False)
    train_line = text.splitlines().index("train:") + 1
    spec = netspec.loads(text, "net.yaml")
    analysis = netspec.analyze(spec)
    try:
        validate_train(spec, analysis)
    except (SpecError, SpecErrors) as exc:
        for err in exc.errors if isinstance(exc, SpecErrors) else [exc]:
            assert err.mark is not None and err.mark.line >= train_line and err.path[:1] == ("train",), err.format()
    else:  # valid: the trainer's path accepts it too
        check_train(parse_train(spec), analysis, spec)
        return
    try:  # the trainer's path (parse, then check) fails cleanly as well
        check_train(parse_train(spec), analysis, spec)
    except (SpecError, SpecErrors):
        return
    raise AssertionError("validate_train failed but parse_train and check_train passed")


def test_a_spec_without_a_train_section_is_told_so_when_the_default_data_does_not_fit():
    """lenet5-like: no `train:`, so the default digits would train it; the hint says the section is missing."""
    spec = netspec.loads(BIG.removesuffix("train:\n"), "net.yaml")
    with pytest.raises(SpecErrors) as info:
        check_train(parse_train(spec), netspec.analyze(spec), spec)
    (error,) = info.value.errors
    assert "does not fit input `input` 784" in error.message
    assert "the spec has no `train:` section" in error.hint and "digits" in error.hint
