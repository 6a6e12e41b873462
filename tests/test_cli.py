"""The command line's machine-readable contract: exit codes, stderr format, JSON fields."""

import json
import subprocess
import sys

import pytest

BAD = """name: bad
input: [3, 32, 32]
layers:
  - conv2d: {out_channels: 8, kernel_size: 3}
  - conv1d: {out_channels: 4, kernel_size: 3}
"""


def netspec(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "netspec", *args], capture_output=True, text=True, cwd=cwd)


def test_validate_ok_exits_zero():
    run = netspec("validate", "specs/mlp_digits.yaml", "specs/cnn_digits.yaml")
    assert run.returncode == 0, run.stderr
    assert "specs/mlp_digits.yaml: ok" in run.stdout


def test_validate_invalid_exits_one_with_compiler_errors(tmp_path):
    (tmp_path / "bad.yaml").write_text(BAD)
    run = netspec("validate", "bad.yaml", cwd=tmp_path)
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert lines[0] == "bad.yaml:5:5: error: conv1d needs a [C, L] input (batch excluded), got 8×30×30"
    assert lines[1] == "     5 |   - conv1d: {out_channels: 4, kernel_size: 3}"
    assert lines[2] == "       |     ^"
    assert "hint: did you mean `conv2d`?" in run.stderr
    assert "Traceback" not in run.stderr


def test_validate_reports_every_spec_and_fails_if_any_fails(tmp_path):
    (tmp_path / "bad.yaml").write_text(BAD)
    run = netspec("validate", str(tmp_path / "bad.yaml"), "specs/mlp_digits.yaml")
    assert run.returncode == 1 and "mlp_digits.yaml: ok" in run.stdout


@pytest.mark.parametrize("args", [[], ["validate"], ["summary", "x.yaml", "--batch", "0"], ["frobnicate"],
                                  ["validate", "specs/rnn_charlm.yaml", "--dim", "T=²"]])
def test_bad_usage_exits_two(args):
    assert netspec(*args).returncode == 2


def test_missing_file_is_a_usage_error():
    run = netspec("validate", "no/such.yaml")
    assert run.returncode == 2 and "cannot read `no/such.yaml`" in run.stderr and "Traceback" not in run.stderr


def test_summary_json_contract():
    run = netspec("summary", "specs/resnet18.yaml", "--json", "--batch", "32")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    for key in ("name", "inputs", "outputs", "total_params", "trainable_params", "macs", "flops", "layers"):
        assert key in data
    assert data["inputs"] == {"input": [3, 224, 224]} and data["outputs"] == {"output": [1000]}
    assert data["total_params"] == 11_689_512 and data["macs"] == 1_814_073_344
    first = data["layers"][0]
    assert {"name", "op", "inputs", "output_shape", "params", "macs", "receptive_field"} <= set(first)
    assert first["name"] == "conv1" and first["output_shape"] == [64, 112, 112]
    assert first["receptive_field"] == {"size": [7, 7], "jump": [2, 2]}
    assert data["training_memory"]["batch"] == 32 and data["training_memory"]["total"] > 0


def test_summary_table_and_markdown():
    run = netspec("summary", "specs/mlp_digits.yaml")
    assert run.returncode == 0 and "params        9,610" in run.stdout
    run = netspec("summary", "specs/mlp_digits.yaml", "--markdown")
    assert run.returncode == 0 and run.stdout.startswith("### mlp_digits")


def test_symbolic_dims_are_unknown_until_bound():
    run = netspec("summary", "specs/rnn_charlm.yaml", "--json")
    assert json.loads(run.stdout)["macs"] is None
    run = netspec("summary", "specs/rnn_charlm.yaml", "--json", "--dim", "T=32")
    assert json.loads(run.stdout)["macs"] > 0


GOOD = """name: good
input: [4]
layers:
  - linear: 2
"""


@pytest.mark.parametrize("text, code", [(GOOD, 0), (BAD, 1), (GOOD + "expect: {params: 1}\n", 1)])
def test_validate_draw_loads_expands_and_costs_the_spec_once(text, code, tmp_path, monkeypatch, capsys):
    from importlib import import_module

    from netspec.cli import main

    analysis, draw, graph, spec = (import_module(f"netspec.{m}") for m in ("analysis", "draw", "graph", "spec"))

    calls = {"parse": 0, "expand": 0, "layer_stats": 0}

    def counting(owner, attr, key):
        real = getattr(owner, attr)

        def wrapper(*args, **kwargs):
            calls[key] += 1
            return real(*args, **kwargs)
        monkeypatch.setattr(owner, attr, wrapper)

    counting(spec, "parse", "parse")
    counting(graph._Expander, "run", "expand")
    counting(analysis, "layer_stats", "layer_stats")
    monkeypatch.setattr(draw, "layer_stats", analysis.layer_stats)
    (tmp_path / "net.yaml").write_text(text)
    out = tmp_path / "net.dot"
    assert main(["validate", str(tmp_path / "net.yaml"), "--draw", str(out)]) == code
    assert calls == {"parse": 1, "expand": 1, "layer_stats": 1}
    assert out.read_text().startswith("digraph")
    err = capsys.readouterr().err
    assert ("error:" in err) == bool(code) and "Traceback" not in err


def test_validate_draw_of_a_file_that_does_not_parse_draws_nothing(tmp_path, capsys):
    from netspec.cli import main

    (tmp_path / "net.yaml").write_text("name: [\n")
    assert main(["validate", str(tmp_path / "net.yaml"), "--draw", str(tmp_path / "net.dot")]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "no diagram" in err and not (tmp_path / "net.dot").exists()


def test_compile_replaces_its_output_atomically(tmp_path, monkeypatch, capsys):
    import os

    from netspec.cli import main

    out = tmp_path / "model.py"
    out.write_text("old")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    assert main(["compile", "specs/mlp_digits.yaml", "-o", str(out)]) == 2  # said, not an internal error
    assert out.read_text() == "old" and os.listdir(tmp_path) == ["model.py"]
    monkeypatch.undo()
    assert main(["compile", "specs/mlp_digits.yaml", "-o", str(out)]) == 0
    assert "class MlpDigits(nn.Module):" in out.read_text()
