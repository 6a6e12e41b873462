"""The shipped specs train as their `train:` sections say, to the published figures.

- digits (shared/reference/README.md): a hand-written loop reached 96.1 % (MLP) and 97.8 % (CNN);
  the issue's bar is ≥ 96 % and ≥ 97.5 %.
- MNIST-1D (Greydanus, "Scaling down deep learning", 2020): MLP 68 %, CNN 94 %, GRU 91 %; the three
  specs are the repository's models (greydanus/mnist1d, models.py), checked here weight for weight.
- The autoencoders and the LSTM train on digits: their losses fall, and the grids are drawn.

Each classifier run is the spec's own, unchanged (seed 0), so `netspec train specs/<name>.yaml`
reproduces it; the autoencoders and the LSTM run a few epochs of theirs. About 60 s on 2 CPU cores.
"""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import netspec

SPECS = Path(__file__).parents[2] / "specs"
PUBLISHED = {"mlp_digits": 0.96, "cnn_digits": 0.975, "mnist1d_mlp": 0.68, "mnist1d_cnn": 0.94, "mnist1d_gru": 0.91}


@pytest.mark.parametrize("name, bar", PUBLISHED.items())
def test_a_classifier_reaches_its_published_accuracy(name, bar, tmp_path):
    run = netspec.train(SPECS / f"{name}.yaml", out=tmp_path / "run", progress=False)
    assert run.summary["test_accuracy"] >= bar, run.summary
    assert json.loads((run.path / "summary.json").read_text())["test_accuracy"] == run.summary["test_accuracy"]


# --- the MNIST-1D specs are the repository's models (greydanus/mnist1d, models.py, 2020) ---------------------


class MLPBase(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear1, self.linear2, self.linear3 = nn.Linear(40, 100), nn.Linear(100, 100), nn.Linear(100, 10)

    def forward(self, x):
        h = self.linear1(x).relu()
        h = h + self.linear2(h).relu()
        return self.linear3(h)


class ConvBase(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 25, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(25, 25, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(25, 25, 3, stride=2, padding=1)
        self.linear = nn.Linear(125, 10)

    def forward(self, x):
        h = self.conv3(self.conv2(self.conv1(x).relu()).relu()).relu()
        return self.linear(h.view(h.shape[0], -1))


class GRUBase(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(1, 6, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(2 * 6 * 40, 10)

    def forward(self, x):
        out, _ = self.gru(x)  # (B, 40, 12)
        return self.linear(out.reshape(out.shape[0], -1))


@pytest.mark.parametrize("name, reference, shape", [
    ("mnist1d_mlp", MLPBase, (40,)), ("mnist1d_cnn", ConvBase, (1, 40)), ("mnist1d_gru", GRUBase, (40, 1)),
])
def test_a_mnist1d_spec_is_the_repository_model(name, reference, shape):
    torch.manual_seed(0)
    ref = reference().eval()
    model = netspec.build(netspec.load(SPECS / f"{name}.yaml")).eval()
    model.load_state_dict(ref.state_dict(), strict=True)  # same names, same shapes
    x = torch.randn(4, *shape)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x))


# --- the autoencoders and the LSTM ------------------------------------------------------------------------


@pytest.mark.parametrize("name, epochs, grids", [
    ("vae", 3, {"reconstructions.png", "samples.png"}),
    ("conv_autoencoder", 2, {"reconstructions.png"}),
])
def test_an_autoencoder_learns_to_reconstruct(name, epochs, grids, tmp_path):
    run = netspec.train(SPECS / f"{name}.yaml", epochs=epochs, out=tmp_path / "run", progress=False)
    rows = (run.path / "metrics.csv").read_text().splitlines()
    header, first, last = rows[0].split(","), rows[1].split(","), rows[-1].split(",")
    train, val = header.index("train_loss"), header.index("val_loss")
    assert float(last[train]) < 0.9 * float(first[train]) and float(last[val]) < float(first[val])
    assert grids <= {p.name for p in run.path.iterdir()}


def test_the_lstm_reads_digits_row_by_row(tmp_path):
    run = netspec.train(SPECS / "lstm_classifier.yaml", epochs=4, out=tmp_path / "run", progress=False)
    assert run.summary["samples"]["test"] > 80  # digits 0-4 only: about 900 samples, a tenth for test
    assert run.summary["test_accuracy"] > 0.8  # chance is 0.2
