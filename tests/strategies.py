"""Hypothesis strategies for random specs, as YAML text.

`specs()` draws a whole spec: an input of any rank (a vector, a sequence with a
symbolic length `T`, an image, a volume, integer tokens, or two named inputs),
then a few items drawn from every op of the catalog (`OPS` covers `REGISTRY`), with
merges of earlier named layers, residual groups, a parameterized block used with
`repeat`, fan-out through `from:`, `when:`, `frozen:`, `init:` and several outputs.

The generator tracks only the rank of the running tensor, so specs are plausible
rather than valid: a good share fail validation (which must be a clean SpecError),
the others must build and run with the shapes and counts the analysis predicts.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import strategies as st

SYMBOLIC = "T"  # the symbolic dim of sequence inputs; tests bind it to a size
INITS = ["default", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "zeros", "ones",
         {"normal": {"std": 0.02}}]
ACTIVATIONS = ["relu", "sigmoid", "tanh", "silu", "identity", "gelu", "elu", "leaky_relu"]


ANY = (0, 1, 2, 3, 4)  # ranks of the running tensor an op applies to
SOME = (1, 2, 3, 4)


def _activation(op: str):
    def gen(draw, r):
        args = {"elu": {"alpha": 0.5}, "leaky_relu": 0.2, "gelu": {"approximate": "tanh"}}.get(op)
        return (args if draw(st.booleans()) else None), r
    return gen


def _along_dim(draw, r):
    return {"dim": draw(st.integers(-r, r - 1))}, r


def _dropout(draw, r):
    return draw(st.sampled_from([0.0, 0.2, 0.5])), r


def _linear(draw, r):
    return {"out_features": draw(st.integers(1, 8)), "bias": draw(st.booleans())}, r


def _choice(*values):
    return lambda draw, r: (draw(st.sampled_from(values)), r)


def _conv(transposed: bool):
    def gen(draw, r):
        stride = draw(st.integers(1, 2))
        args = {"out_channels": draw(st.integers(1, 6)), "kernel_size": draw(st.integers(1, 3)),
                "stride": stride, "bias": draw(st.booleans())}
        if transposed:
            args["padding"] = draw(st.integers(0, 1))
            args["output_padding"] = draw(st.integers(0, stride - 1))
        else:
            args["padding"] = draw(st.sampled_from([0, 1, "same"] if stride == 1 else [0, 1]))
            args["dilation"] = draw(st.integers(1, 2))
        if draw(st.integers(0, 5)) == 0:
            args["groups"] = 2
        return args, r
    return gen


def _pool(draw, r):
    kernel = draw(st.integers(1, 3))
    return {"kernel_size": kernel, "stride": draw(st.sampled_from([None, 1, 2])),
            "padding": draw(st.integers(0, kernel // 2))}, r


def _upsample(draw, r):
    mode = draw(st.sampled_from(["nearest", {2: "linear", 3: "bilinear", 4: "trilinear"}[r]]))
    return draw(st.sampled_from([{"scale_factor": 2, "mode": mode}, {"size": 3, "mode": mode}])), r


def _recurrent(draw, r):
    layers = draw(st.integers(1, 2))
    args = {"hidden_size": draw(st.integers(1, 6)), "num_layers": layers, "bidirectional": draw(st.booleans()),
            "output": draw(st.sampled_from(["sequence", "last"])), "dropout": 0.1 if layers > 1 else 0.0}
    return args, 2 if args["output"] == "sequence" else 1


def _flatten(draw, r):
    start = draw(st.integers(0, r - 1))
    return (start if start else None), start + 1


def _mean(draw, r):
    keep = draw(st.booleans())
    return {"dim": draw(st.integers(0, r - 1)), "keepdim": keep}, r if keep else r - 1


def _select(draw, r):
    return {"dim": draw(st.integers(0, r - 1)), "index": draw(st.sampled_from([0, -1]))}, r - 1


def _permute(draw, r):
    return draw(st.permutations(list(range(r)))), r


def _reshape(draw, r):
    return draw(st.sampled_from([([-1], 1), ([-1, 1], 2), ([1, -1], 2)]))


def _embedding(draw, r):
    return {"num_embeddings": draw(st.integers(2, 10)), "out": draw(st.integers(1, 6))}, r + 1


# op -> (the ranks it applies to, draw(args, rank) -> (its value, the rank of its output))
OPS = {
    **{op: (ANY, _activation(op)) for op in ACTIVATIONS},
    "softmax": (SOME, _along_dim), "log_softmax": (SOME, _along_dim),
    "dropout": (ANY, _dropout), "dropout2d": ((3,), _choice(0.1, 0.5)),
    "linear": (SOME, _linear),
    "layernorm": (SOME, _choice(None, {"affine": False}, {"bias": False})),
    "groupnorm": ((2, 3, 4), lambda draw, r: ({"num_groups": draw(st.integers(1, 2))}, r)),
    **{op: (ranks, _choice(None, {"affine": False}, {"momentum": None}))
       for op, ranks in (("batchnorm1d", (1, 2)), ("batchnorm2d", (3,)), ("batchnorm3d", (4,)))},
    **{f"conv{n}d": ((n + 1,), _conv(False)) for n in (1, 2, 3)},
    **{f"conv_transpose{n}d": ((n + 1,), _conv(True)) for n in (1, 2, 3)},
    **{f"{kind}pool{n}d": ((n + 1,), _pool) for kind in ("max", "avg") for n in (1, 2, 3)},
    **{f"adaptive_{kind}pool{n}d": ((n + 1,), _choice(1, 2, 3)) for kind in ("max", "avg") for n in (1, 2, 3)},
    "upsample": ((2, 3, 4), _upsample),
    "rnn": ((2,), _recurrent), "lstm": ((2,), _recurrent), "gru": ((2,), _recurrent),
    "self_attention": ((2,), lambda draw, r: ({"num_heads": draw(st.integers(1, 2)),
                                                "dropout": draw(st.sampled_from([0.0, 0.1]))}, r)),
    "class_token": ((2,), _choice(None)), "pos_embedding": ((2,), _choice(None)),
    "flatten": (SOME, _flatten), "mean": (SOME, _mean), "select": ((2, 3, 4), _select),
    "permute": (SOME, _permute), "reshape": (ANY, _reshape),
    "embedding": ((), _embedding),  # drawn first on integer inputs only
}
MERGES = ["add", "multiply", "concat", "reparameterize"]  # drawn by `_Spec.merge`
INPUTS = {  # rank -> a per-sample shape strategy
    1: st.tuples(st.integers(1, 12)),
    2: st.tuples(st.sampled_from([3, 5, 8, SYMBOLIC]), st.integers(1, 6)),
    3: st.tuples(st.integers(1, 4), st.integers(3, 10), st.integers(3, 10)),
    4: st.tuples(st.integers(1, 3), st.integers(2, 5), st.integers(2, 5), st.integers(2, 5)),
}


class _Spec:
    """One drawn spec under construction: its layers, named values (name -> rank) and blocks."""

    def __init__(self, draw):
        self.draw = draw
        self.layers: list[dict] = []
        self.named: dict[str, int] = {}
        self.blocks: dict[str, Any] = {}
        self.count = 0

    def name(self) -> str:
        self.count += 1
        return f"l{self.count}"

    def tree(self) -> dict:
        draw = self.draw
        kind = draw(st.sampled_from(["tensor", "tensor", "tensor", "tokens", "two"]))
        if kind == "tokens":
            spec = {"name": "random", "input": {"shape": [draw(st.sampled_from([SYMBOLIC, 4]))], "dtype": "int64"}}
            args, rank = _embedding(draw, 1)
            self.layers.append({"embedding": args})
        else:
            rank = draw(st.integers(1, 4))
            shape = list(draw(INPUTS[rank]))
            if kind == "two":
                spec = {"name": "random", "inputs": {"a": shape, "b": shape}}
                self.layers.append({draw(st.sampled_from(["add", "multiply", "concat"])): ["a", "b"]})
            else:
                spec = {"name": "random", "input": shape}
                self.named["input"] = rank
        if draw(st.booleans()):
            spec["init"] = draw(st.sampled_from(INITS))
        for _ in range(draw(st.integers(1, 6))):
            rank = self.item(rank)
        last = self.running(rank)
        if len(self.named) > 1 and draw(st.integers(0, 3)) == 0:
            spec["outputs"] = [last, draw(st.sampled_from(sorted(set(self.named) - {last, "input"})))] \
                if set(self.named) - {last, "input"} else [last]
        if self.blocks:
            spec["blocks"] = self.blocks
        spec["layers"] = self.layers
        return spec

    def running(self, rank: int) -> str:
        """The name of the running value, naming the last layer if it has none."""
        if not self.layers:
            return "input"
        last = self.layers[-1]
        if "name" not in last:
            last["name"] = self.name()
            self.named[last["name"]] = rank
        return last["name"]

    def item(self, rank: int) -> int:
        """Append one item; return the rank of its output."""
        draw = self.draw
        choice = draw(st.sampled_from(["op"] * 6 + ["merge", "residual", "block", "fanout"]))
        item, rank = getattr(self, choice)(rank)
        if "name" in item or draw(st.integers(0, 4)) == 0:
            item.setdefault("name", self.name())
            self.named[item["name"]] = rank
        if draw(st.integers(0, 6)) == 0:
            item["when"] = draw(st.sampled_from([True, False, "${in_shape[0] > 2}"]))
        if draw(st.integers(0, 6)) == 0:
            item["frozen"] = True
        if draw(st.integers(0, 6)) == 0:
            item["init"] = draw(st.sampled_from(INITS))
        self.layers.append(item)
        return rank

    def op(self, rank: int) -> tuple[dict, int]:
        op = self.draw(st.sampled_from(sorted(op for op, (ranks, _) in OPS.items() if rank in ranks)))
        args, rank = OPS[op][1](self.draw, rank)
        return {op: args}, rank

    def merge(self, rank: int) -> tuple[dict, int]:
        """Merge the running value with an earlier one of the same rank."""
        current = self.running(rank)
        others = sorted(n for n, r in self.named.items() if r == rank)
        op = self.draw(st.sampled_from(MERGES))
        return {op: [current, self.draw(st.sampled_from(others))]}, rank

    def residual(self, rank: int) -> tuple[dict, int]:
        """A group: a shape-keeping layer `f`, then `add: [f, input]`."""
        body = {3: {"conv2d": {"out_channels": "${in_channels}", "kernel_size": 3, "padding": 1}},
                4: {"conv3d": {"out_channels": "${in_channels}", "kernel_size": 1}}}.get(
            rank, {"linear": "${in_features}"})
        return {"name": self.name(), "layers": [{**body, "name": "f"}, {"add": ["f", "input"]}]}, rank

    def block(self, rank: int) -> tuple[dict, int]:
        """A use of the block for this rank (defined on first use), repeated 0 to 2 times."""
        name = f"block{rank}"
        if name not in self.blocks:
            first = {3: {"conv2d": {"out_channels": "$width", "kernel_size": 3, "padding": 1}}}.get(
                rank, {"linear": "$width"})
            self.blocks[name] = {"args": {"width": "int"}, "layers": [
                {**first, "name": "fc"},
                {self.draw(st.sampled_from(ACTIVATIONS)): None},
                {"add": ["fc", "input"],
                 "when": "${in_shape[0] == width}" if rank == 3 else "${in_features == width}"},
            ]}
        width = self.draw(st.integers(1, 4))
        return {name: {"width": width}, "repeat": self.draw(st.integers(0, 2)), "name": self.name()}, rank

    def fanout(self, rank: int) -> tuple[dict, int]:
        """An op reading an earlier named value through `from:`."""
        if not self.named:
            return self.op(rank)
        source = self.draw(st.sampled_from(sorted(self.named)))
        item, rank = self.op(self.named[source])
        return {**item, "from": source}, rank


@st.composite
def specs(draw) -> str:
    """A random spec as YAML text."""
    return yaml.safe_dump(_Spec(draw).tree(), sort_keys=False, allow_unicode=True)
