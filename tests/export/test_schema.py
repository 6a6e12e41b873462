"""The JSON Schema of the language: valid draft 2020-12, accepts every shipped spec, rejects what
`netspec validate` rejects where a schema can tell, and follows the catalog and the registries."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import netspec
from netspec.errors import SpecError, SpecErrors
from netspec.export.schema import schema, undocumented
from netspec.layers import REGISTRY
from netspec.spec import LAYER_KEYS, SpecModel
from netspec.train.config import LOSS_KEYS, parse_train

jsonschema = pytest.importorskip("jsonschema", reason="the schema tests need jsonschema (the test extra)")

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
SCHEMA = schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
BASE = "name: t\ninput: [64]\nlayers:\n"


def errors(text: str) -> list:
    return list(VALIDATOR.iter_errors(yaml.safe_load(text)))


def best(text: str):
    found = errors(text)
    assert found, "the schema accepts it"
    return jsonschema.exceptions.best_match(found)


def rejected_by_netspec(text: str) -> bool:
    try:
        spec = netspec.loads(text)
        netspec.analyze(spec)
        parse_train(spec)
    except (SpecError, SpecErrors):
        return True
    return False


def test_schema_is_valid_draft_2020_12_and_json():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json.loads(json.dumps(SCHEMA)) == SCHEMA


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_shipped_spec_validates(path):
    """As written: files that `extends` another lack what their base gives (resnet34: no layers, no input)."""
    assert errors(path.read_text(encoding="utf-8")) == []


ACCEPTED = {
    "bare op and null value": BASE + "  - linear: 10\n  - relu\n  - batchnorm1d:\n    name: bn\n",
    "main argument, torch name, alias": BASE + "  - linear: 10\n  - linear: {out_features: 10}\n  - linear: {out: 5}\n",
    "expressions at any depth": "name: t\ninput: [3, 8, 8]\nargs: {w: 4, k: 3, n: 2}\nlayers:\n"
                                "  - conv2d: {out_channels: $w, kernel_size: [$k, '${k - 1 + 1}']}\n"
                                "    repeat: $n\n    when: ${n > 0}\n  - relu\n",
    "merges name their inputs": BASE + "  - linear: 64\n    name: a\n  - add: [a, input]\n"
                                       "  - concat: {dim: 0}\n    from: [a, input]\n",
    "a group, frozen, with init": BASE + "  - name: g\n    frozen: true\n    init: {normal: {std: 0.02}}\n"
                                         "    layers: [relu, {linear: 3}]\n",
    "symbolic dims and int inputs": "name: t\ninput: {shape: [T], dtype: int64}\n"
                                    "layers: [{embedding: {num_embeddings: 10, embedding_dim: 4}}]\n",
    "a block used as an op": "name: t\ninput: [8]\nblocks:\n  b: {args: {w: int}, layers: [{linear: $w}]}\n"
                             "layers:\n  - b: 3\n  - b: {w: 4}\n    repeat: 2\n",
    "a derived file": "extends: base.yaml\nargs: {depths: [3, 4, 6, 3]}\n",
    "hyphenated and positional names": BASE + "  - linear: 10\n    name: block1-0\n  - relu:\n    name: '3'\n",
    "op arguments": "name: t\ninput: [8]\nargs: {act: relu}\nlayers:\n  - $act\n  - $act:\n    name: a\n",
    "op arguments in a block": "name: t\ninput: [8]\nblocks:\n  b:\n    args: {act: relu}\n"
                               "    layers: [$act, {$act: null, name: a}]\nlayers: [b]\n",
    "a full train section": BASE + "  - linear: 10\ntrain:\n"
                            "  data: {dataset: {csv: {path: a.csv, target: y}}, split: [0.8, 0.1, 0.1],\n"
                            "         transform: [{resize: [8, 8]}],\n"
                            "         augment: [random_horizontal_flip, {gaussian_noise: 0.1}]}\n"
                            "  loss: [{mse: {}, output: x, weight: 0.5}, {kl_normal: {mu: m, logvar: v}}]\n"
                            "  optimizer: {sgd: {lr: 0.1, momentum: 0.9, nesterov: true}}\n"
                            "  schedule: {cosine: {}, warmup_epochs: 1}\n"
                            "  param_groups: [{params: ['fc*'], lr: 0.01}]\n"
                            "  early_stopping: {monitor: val_loss, patience: 3}\n"
                            "  metrics: [accuracy, top5]\n  device: cuda:1\n",
}


@pytest.mark.parametrize("text", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepts_the_written_forms(text):
    assert errors(text) == []


# (spec, where the schema's best error points, a word of its message); each is also an error to netspec
REJECTED = {
    "unknown op": (BASE + "  - linaer: 10\n", ["layers", 0], "linaer"),
    "unknown argument": (BASE + "  - linear: {out_features: 10, kernal: 3}\n", ["layers", 0, "linear"], "kernal"),
    "wrong type": (BASE + "  - linear: {out_features: ten}\n", ["layers", 0, "linear", "out_features"], "ten"),
    "out of bounds": (BASE + "  - dropout: 1.5\n", ["layers", 0, "dropout"], "1.5"),
    "not in the enum": (BASE + "  - gelu: fast\n", ["layers", 0, "gelu"], "fast"),
    "a torch name and its alias": (BASE + "  - linear: {out: 10, out_features: 3}\n", ["layers", 0, "linear"],
                                   "out"),
    "a bare op that needs arguments": (BASE + "  - linear\n", ["layers", 0], "linear"),
    "two ops in one item": (BASE + "  - linear: 10\n    relu:\n", ["layers", 0], "relu"),
    "a reserved name": (BASE + "  - linear: 10\n    name: input\n", ["layers", 0, "name"], "input"),
    "a name with a loose hyphen": (BASE + "  - linear: 10\n    name: block1-\n", ["layers", 0, "name"], "block1-"),
    "unknown top-level key": (BASE + "  - relu\nlayer: []\n", [], "layer"),
    "no input": ("name: t\nlayers: [relu]\n", [], ""),
    "unknown optimizer": (BASE + "  - linear: 10\ntrain: {optimizer: {adamm: {lr: 0.1}}}\n", ["train", "optimizer"],
                          "adamm"),
    "unknown optimizer, bare": (BASE + "  - linear: 10\ntrain: {optimizer: adamm}\n", ["train", "optimizer"],
                                "adamm"),
    "unknown optimizer argument": (BASE + "  - linear: 10\ntrain: {optimizer: {adam: {learning_rate: 0.1}}}\n",
                                   ["train", "optimizer", "adam"], "learning_rate"),
    "expression in train": (BASE + "  - linear: 10\ntrain: {epochs: $n}\n", ["train", "epochs"], "$n"),
    "warm-up by epochs and steps": (BASE + "  - linear: 10\ntrain: {schedule: {warmup_epochs: 1, warmup_steps: 9}}\n",
                                    ["train", "schedule"], ""),
}


@pytest.mark.parametrize("text, where, word", REJECTED.values(), ids=REJECTED.keys())
def test_rejects_what_netspec_rejects(text, where, word):
    err = best(text)
    assert list(err.absolute_path) == where
    assert word in err.message
    assert rejected_by_netspec(text)


def test_unknown_ops_are_blocks_only_where_the_spec_may_have_blocks():
    """A misspelt op is an error in a spec without blocks, and taken for a block in one with blocks (netspec
    validate still rejects it there)."""
    blocks = "name: t\ninput: [8]\nblocks:\n  b: {layers: [relu]}\nlayers:\n  - b\n  - linaer: 4\n"
    assert errors(blocks) == []
    assert rejected_by_netspec(blocks)
    assert errors(blocks.replace("  - b\n", "  - relu\n").replace("blocks:\n  b: {layers: [relu]}\n", ""))
    body = "name: t\ninput: [8]\nblocks:\n  b: {layers: [{c: {}}]}\n  c: {layers: [relu]}\nlayers: [b]\n"
    assert errors(body) == []  # a block body may use other blocks
    assert best("name: t\ninput: [8]\nblocks:\n  b: {layers: [{relu: null, linear: 3}]}\nlayers: [b]\n")


def test_blocks_cannot_take_a_catalog_name():
    assert best("name: t\ninput: [8]\nblocks:\n  relu: {layers: [relu]}\nlayers: [relu]\n")


def test_follows_the_catalog():
    """Every op, every argument under its torch name and aliases, every layer key, every top-level key."""
    item = SCHEMA["$defs"]["item"]["else"]["properties"]
    assert set(item) == set(REGISTRY) | set(LAYER_KEYS)
    assert set(SCHEMA["properties"]) == set(SpecModel.model_fields) | {"extends"}
    conv = SCHEMA["$defs"]["layer.conv2d"]["then"]["properties"]
    assert {"out_channels", "out", "kernel_size", "kernel", "stride", "padding", "bias"} <= set(conv)
    assert conv["stride"]["default"] == 1
    assert conv["kernel"]["description"].startswith("Alias of `kernel_size`.")
    assert "window size" in conv["kernel_size"]["description"]
    assert SCHEMA["$defs"]["layer.dropout"]["then"]["properties"]["p"]["anyOf"][0]["maximum"] == 1
    assert SCHEMA["$defs"]["layer.gelu"]["then"]["properties"]["approximate"]["anyOf"][0]["enum"] == ["none", "tanh"]


def test_follows_the_training_registries():
    from netspec.export.schema import REGISTRIES

    for kind, registry in REGISTRIES.items():
        assert set(SCHEMA["$defs"][kind]["else"]["properties"]) == set(registry.entries)
        assert all(f"{kind}.{name}" in SCHEMA["$defs"] for name in registry.entries)
    term = next(f for f in SCHEMA["$defs"]["train"]["properties"]["loss"]["anyOf"] if f.get("type") == "object")
    assert set(term["properties"]) == set(REGISTRIES["loss"].entries) | set(LOSS_KEYS)
    adam = SCHEMA["$defs"]["optimizer.adam"]["then"]["properties"]
    assert adam["betas"]["default"] == [0.9, 0.999]
    assert adam["lr"]["anyOf"] == [{"type": "number", "exclusiveMinimum": 0}, {"enum": ["auto"]}]


def test_every_layer_argument_is_described():
    assert not [line for line in undocumented() if line.startswith("layer ")]


def test_schema_never_imports_torch():
    code = ("import sys\nfrom netspec.export.schema import schema\nschema()\n"
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
