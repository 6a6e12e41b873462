"""Fuzzing in CI, from fixed seeds (docs/security.md, "Fuzzing"): random specs against torch and the generated
source, hundreds of mutated specs through validate (and some through compile) in workers with a time and
memory limit, the coverage-guided harnesses for a few hundred inputs each, and what fuzzing found."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings

import pytest
from hypothesis import HealthCheck, given, settings

import netspec
from tests.fuzz.differential import check
from tests.fuzz.mutate import make_case
from tests.samples import ROOT
from tests.strategies import specs

FUZZ = [sys.executable, "-m", "tests.fuzz.run"]
CI_CASES, CI_SEED = 400, 0
EXAMPLES = 2000 if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else 60  # `make fuzz` runs the deep profile


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_random_specs_meet_torch_at_every_layer_and_several_sizes(text):
    """Every layer's shape, measured by torch at three sizes of each symbolic dim, is the analysis's, and the
    symbolic shape evaluated there; parameter counts agree; the generated module is build's."""
    check(text)


def test_differential_checks_catch_a_wrong_symbolic_shape(monkeypatch):
    """The check is not vacuous: a symbolic conv length off by one is reported with the layer and the size."""
    from netspec import arith

    real = arith._affine
    monkeypatch.setattr(arith, "_affine", lambda d, *a: f"{real(d, *a)}+1" if isinstance(d, str) and "//" in
                        real(d, *a) else real(d, *a))
    text = "name: t\ninput: [2, L]\nlayers:\n  - conv1d: {out: 2, kernel: 3, stride: 2}\n    name: c\n"
    with pytest.raises(AssertionError, match=r"`c` \(conv1d\): symbolic .* at \{'L': 3\}"):
        check(text)


def test_mutants_get_a_located_answer_in_bounded_time_and_memory(tmp_path):
    """Hundreds of mutants of specs/ and of random specs: each is valid or a located error, within 2 GiB and
    20 s (twice the stated 10 s: two workers share CI's two cores with whatever else runs); the valid ones
    drawn for it compile to a file that imports and runs."""
    report = tmp_path / "report.json"
    done = subprocess.run([*FUZZ, "--cases", str(CI_CASES), "--seed", str(CI_SEED), "--jobs", "2", "--timeout",
                           "20", "--json", str(report), "--save", str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    print(done.stdout)
    result = json.loads(report.read_text())
    assert done.returncode == 0 and not result["findings"], done.stdout[-5000:] + done.stderr[-3000:]
    counts = result["counts"]
    assert sum(counts.get(k, 0) for k in ("valid", "invalid")) == CI_CASES
    assert counts.get("valid", 0) >= 20 and counts.get("compile-ok", 0) >= 2, counts


def test_a_case_is_rebuilt_from_its_seed_and_index(tmp_path):
    assert make_case(CI_SEED, 17).data == make_case(CI_SEED, 17).data
    assert make_case(CI_SEED, 17).data != make_case(CI_SEED + 1, 17).data
    done = subprocess.run([*FUZZ, "--seed", str(CI_SEED), "--case", "17", "--save", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"seed {CI_SEED} case 17:" in done.stdout and "validate: " in done.stdout
    assert (tmp_path / f"seed{CI_SEED}" / "case17.yaml").read_bytes() == make_case(CI_SEED, 17).data


@pytest.mark.parametrize("harness", ["atheris_loader", "atheris_expr"])
def test_the_coverage_guided_harnesses_run(harness, tmp_path):
    """A few hundred inputs each, with a fixed libFuzzer seed; without atheris, each says so and exits 0."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for spec in (ROOT / "specs").glob("*.yaml") if harness == "atheris_loader" else []:
        (corpus / spec.name).write_bytes(spec.read_bytes())
    done = subprocess.run([sys.executable, "-m", f"tests.fuzz.{harness}", "-runs=300", "-seed=1",
                           f"-artifact_prefix={tmp_path}/", str(corpus)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # libFuzzer counts the corpus's files too: one run each, beside the 300 asked for
    assert re.search(r"Done \d{3,} runs", done.stderr) or "atheris is not installed" in done.stdout


# ---- what fuzzing found ---------------------------------------------------------------------------------------------


def test_an_expression_python_warns_about_is_evaluated_without_printing_the_warning():
    """`${1if x else 0}` made Python print `<unknown>:1: SyntaxWarning: invalid decimal literal` on stderr, an
    unlocated line in the middle of validate's output (atheris_expr)."""
    from netspec.expr import evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert evaluate("1if True else 0", {}) == 1
        assert evaluate("0x1if 1 else 2", {}) == 1
    spec = netspec.loads("name: t\ninput: [4]\nlayers:\n  - relu: null\n    when: ${1if True else 0}\n")
    with warnings.catch_warnings(), pytest.raises(netspec.SpecErrors, match="must be true or false, got 1"):
        warnings.simplefilter("error")
        netspec.analyze(spec)


@pytest.mark.parametrize("content, line, col", [
    ("name: t\ninput: [4]\nlayers:\n- relu: null\n  fr", 5, 5),  # a key cut off before its colon
    ("name: t\ninput: {shape: [4]", 2, 19),  # a flow mapping never closed
    ("name: t\ninput: [4]\nlayers:\n- relu: null\n  fr\n", 6, 1),  # with its final line break: the empty last line
])
def test_a_file_cut_off_is_located_within_it_not_past_its_end(tmp_path, content, line, col):
    """libyaml puts the end of a stream without a final line break on the line after the last: the error was
    located on a line the file does not have, and quoted no line (mutation fuzzing, truncated specs)."""
    path = tmp_path / "net.yaml"
    path.write_text(content)
    with pytest.raises(netspec.SpecError) as info:
        netspec.load(path)
    assert (info.value.mark.line, info.value.mark.col) == (line, col)
    if not content.endswith("\n"):
        assert f"{line:>4} | " in info.value.format()


def test_a_layer_that_fails_in_every_copy_costs_its_hints_once(monkeypatch):
    """Found by mutation fuzzing (a layer with unknown arguments inside a block repeated 50,000 times):

        name: t
        input: [4]
        blocks:
          b: {layers: [{self_attention: {dim: nearest, ceil_mode: true, heads: 2}}]}
        layers:
          - b: {}
            repeat: 50000
    """
    import netspec.spec

    calls = []
    real = netspec.spec.did_you_mean
    monkeypatch.setattr(netspec.spec, "did_you_mean", lambda *a: calls.append(a) or real(*a))
    text = ("name: t\ninput: [4]\nblocks:\n  b: {layers: [{self_attention: {dim: nearest, ceil_mode: true, "
            "heads: 2}}]}\nlayers:\n  - b: {}\n    repeat: 200\n")
    with pytest.raises(netspec.SpecErrors, match="unknown argument `dim`"):
        netspec.analyze(netspec.loads(text))
    assert len(calls) <= 2  # one per distinct error, not one per copy (400 now)


def test_an_extends_name_the_system_cannot_look_up_is_located(tmp_path):
    """`extends:` with a file name longer than the file system allows made `Path.exists` raise OSError
    (ENAMETOOLONG), an internal error (mutation fuzzing: a byte of `resnet50.yaml` repeated 1,000 times)."""
    path = tmp_path / "net.yaml"
    path.write_text("extends: resnet50." + "y" * 1000 + "aml\nname: t\n")
    with pytest.raises(netspec.SpecError, match="which cannot be read: File name too long") as info:
        netspec.load(path)
    assert (info.value.mark.line, info.value.mark.col) == (1, 10)
