"""One random spec checked three ways: the analysis against torch, the symbolic analysis against the analysis
with its dims bound, and the generated source against `build`.

`check(text)` returns "invalid" (a located SpecError: fine), "too short" (valid for some sizes only, none of
the sizes tried) or "checked"; a mismatch is an AssertionError that says where.

- Every layer's output shape, as `torch.fx`'s ShapeProp measures it on the built module, equals the
  analysis's at each of three sizes bound to the symbolic dims (a different size for each name), and so do
  the module's outputs; its parameter counts, all and trainable, equal the analysis's.
- Every layer's symbolic shape (`(L-3)//2+1`), evaluated at those sizes, is the shape the analysis gives
  with the sizes bound.
- The generated file's module, seeded as `build` is, has build's state_dict, loads it strictly, and returns
  the same outputs in eval and in train mode (dropout drawn from the same seed).
"""

from __future__ import annotations

import torch
from torch.fx.passes.shape_prop import ShapeProp

import netspec
from netspec.codegen import generate
from netspec.compiler import build, class_name, compile_graph
from netspec.expr import evaluate

SIZES = (3, 6, 17)  # bound to the first symbolic dim; the n-th name gets each plus n


def unlocated(exc: netspec.SpecError | netspec.SpecErrors, files: set[str]) -> list[str]:
    """The errors without a place in one of `files` (line and column from 1), formatted."""
    return [e.format() for e in exc.errors
            if e.mark is None or e.mark.file not in files or e.mark.line < 1 or e.mark.col < 1]


def bindings(spec: netspec.Spec) -> list[dict[str, int]]:
    names = list(dict.fromkeys(d for value in spec.inputs.values() for d in value.shape if isinstance(d, str)))
    if not names:
        return [{}]
    return [{name: size + i for i, name in enumerate(names)} for size in SIZES]


def inputs(spec: netspec.Spec, result: netspec.Analysis, batch: int = 2) -> dict[str, torch.Tensor]:
    out = {}
    for name, shape in result.inputs.items():
        dtype = getattr(torch, spec.inputs[name].dtype)
        out[name] = torch.randn(batch, *shape, dtype=dtype) if dtype.is_floating_point else \
            torch.zeros(batch, *shape, dtype=dtype)
    return out


def counts(module: torch.nn.Module) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def shapes(output) -> dict[str, tuple]:
    outputs = output if isinstance(output, dict) else {"output": output}
    return {name: tuple(t.shape[1:]) for name, t in outputs.items()}


def check(text: str) -> str:
    try:
        spec = netspec.loads(text, "random.yaml")
        symbolic = netspec.analyze(spec)
    except (netspec.SpecError, netspec.SpecErrors) as exc:
        assert not unlocated(exc, {"random.yaml"}), unlocated(exc, {"random.yaml"})
        return "invalid"
    compiled = compile_graph(symbolic.graph, "cpu")
    model = compiled.module.eval()
    assert counts(model) == (symbolic.total_params, symbolic.trainable_params), "parameter counts"
    checked = False
    for dims in bindings(spec):
        try:
            bound = netspec.analyze(spec, dims)
        except (netspec.SpecError, netspec.SpecErrors):
            continue  # valid for other sizes (a kernel longer than this one)
        check_symbolic(symbolic, bound, dims)
        x = inputs(spec, bound)
        with torch.no_grad():
            ShapeProp(model).propagate(*x.values())
            assert shapes(model(**x)) == bound.outputs, f"outputs at {dims}"
        for name, node in bound.graph.nodes.items():
            measured = tuple(compiled.values[name].meta["tensor_meta"].shape[1:])
            assert measured == node.shape, f"`{name}` ({node.op}) at {dims}: torch {measured}, analysis {node.shape}"
        if not checked:
            check_generated(spec, bound)
        checked = True
    return "checked" if checked else "too short"


def check_symbolic(symbolic: netspec.Analysis, bound: netspec.Analysis, dims: dict[str, int]) -> None:
    assert list(symbolic.graph.nodes) == list(bound.graph.nodes), f"layers at {dims}"
    for name, node in symbolic.graph.nodes.items():
        evaluated = tuple(d if isinstance(d, int) else evaluate(d, dims) for d in node.shape)
        want = bound.graph.nodes[name].shape
        assert evaluated == want, f"`{name}` ({node.op}): symbolic {node.shape} at {dims} is {evaluated}, bound {want}"
    assert (symbolic.total_params, symbolic.trainable_params) == (bound.total_params, bound.trainable_params)


def check_generated(spec: netspec.Spec, bound: netspec.Analysis) -> None:
    namespace: dict = {}
    exec(compile(generate(spec), "generated.py", "exec"), namespace)
    torch.manual_seed(0)
    built = build(spec)
    torch.manual_seed(0)
    generated = namespace[class_name(spec.name)]()
    assert list(generated.state_dict()) == list(built.state_dict()), "state_dict keys"
    assert all(torch.equal(a, b) for a, b in zip(generated.state_dict().values(), built.state_dict().values())), \
        "weights from the same seed"
    generated.load_state_dict(built.state_dict(), strict=True)
    x = inputs(spec, bound)
    for train in (False, True):
        built.train(train)
        generated.train(train)
        torch.manual_seed(1)
        expected = built(**x)
        torch.manual_seed(1)
        got = generated(*x.values())  # the file's forward takes the inputs in spec order
        expected, got = (expected, got) if isinstance(expected, dict) else ({"": expected}, {"": got})
        assert list(got) == list(expected) and all(torch.equal(got[k], expected[k]) for k in expected), \
            f"generated outputs differ (train={train})"
