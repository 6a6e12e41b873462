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


def test_cli_validate_never_imports_torch():
    code = ("import sys, runpy; sys.argv = ['netspec', 'validate', '-q', 'specs/resnet18.yaml'];\n"
            "from netspec.cli import main; rc = main();\n"
            "assert rc == 0 and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
