"""DESIGN rule 2: validate, summary and draw never import torch."""

import subprocess
import sys

CODE = """
import sys
import netspec
from netspec import report
result = netspec.analyze(netspec.load("specs/resnet50.yaml"))
report.table(result); report.to_json(result)
from netspec.draw import to_dot  # `netspec.draw` itself is the draw function
to_dot(netspec.build_graph(netspec.load("specs/resnet50.yaml")))
assert "torch" not in sys.modules, sorted(m for m in sys.modules if m.startswith("torch"))
"""


def test_analysis_and_drawing_never_import_torch():
    subprocess.run([sys.executable, "-c", CODE], check=True)


TRAIN = """name: t
input: [1, 28, 28]
layers: [{conv2d: {out_channels: 4, kernel_size: 3}, name: conv}, relu, flatten, {linear: 10, name: fc}]
train:
  data: {dataset: {digits: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}, transform: [{resize: [28, 28]}],
         augment: [{random_crop: {size: 28, padding: 2}}, {random_rotation: 10}, {gaussian_noise: 0.05}]}
  loss: {cross_entropy: {label_smoothing: 0.1}}
  optimizer: {sgd: {lr: 0.1, momentum: 0.9}}
  param_groups: [{params: [conv], lr: 0.01}]
  schedule: {cosine: {}, warmup_epochs: 1}
  early_stopping: {monitor: val_top3}
  metrics: [accuracy, top3]
"""


def test_cli_validate_never_imports_torch(tmp_path):
    """Also for `train:` sections: their registries, transforms' shapes and augmentations' checks."""
    (tmp_path / "train.yaml").write_text(TRAIN)
    specs = ["specs/resnet18.yaml", "specs/cnn_digits.yaml", str(tmp_path / "train.yaml")]
    code = (f"import sys, runpy; sys.argv = ['netspec', 'validate', '-q', *{specs!r}];\n"
            "from netspec.cli import main; rc = main();\n"
            "assert rc == 0 and 'torch' not in sys.modules, rc")
    subprocess.run([sys.executable, "-c", code], check=True)
