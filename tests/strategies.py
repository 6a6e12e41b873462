"""Random specs, as YAML text: a hypothesis strategy (`specs()`) and a seeded generator (`random_spec(rng)`),
both driving one generator through a `Chooser`.

A spec draws its inputs — a vector, a sequence `[T, F]` or a signal `[C, L]` with a symbolic length, an image
whose height or width may be symbolic (`H`, `W`), a volume, integer tokens, or two or three named inputs of
any ranks — then a few items from every op of the catalog (`OPS` covers `REGISTRY`): merges of earlier named
layers, residual groups (repeated, with `when: ${index ...}` inside), a parameterized block used with
`repeat`, a block that uses that block, a block of two inputs with an `output:`, fan-out through `from:`,
weight sharing (`share:` of a shape-keeping layer, repeated or not), a `chunk` or `split` whose parts a merge
joins, `when:`, `frozen:`, `init:`, and numbers written as expressions (`${width + 2}`, `${len([0, 0])}`) over
the spec's `args:`. Every named input is used, and a value nothing consumes becomes one of several `outputs`.

The generator tracks only the rank of the running tensor, so specs are plausible rather than valid: a share
fail validation (which must be a clean SpecError), the others must build and run with the shapes and counts
the analysis predicts. `SYMBOLS` are the symbolic dims an input may hold; tests bind them to sizes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from hypothesis import strategies as st

SYMBOLS = ("T", "L", "H", "W", "D")  # symbolic dims: sequence length, signal length, height, width, depth
INITS = ["default", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "zeros", "ones",
         {"normal": {"std": 0.02}}]
ACTIVATIONS = ["relu", "sigmoid", "tanh", "silu", "identity", "gelu", "elu", "leaky_relu"]


class Chooser:
    """Where a generator's choices come from: hypothesis's `draw` (shrinkable) or a `random.Random` (seeded)."""

    def __init__(self, draw: Callable | None = None, rng: random.Random | None = None):
        self.draw, self.rng = draw, rng

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high)) if self.draw else self.rng.randint(low, high)

    def choice(self, values: Sequence) -> Any:
        return self.draw(st.sampled_from(values)) if self.draw else values[self.rng.randrange(len(values))]

    def boolean(self) -> bool:
        return self.draw(st.booleans()) if self.draw else self.rng.random() < 0.5

    def permutation(self, values: Sequence) -> list:
        return self.draw(st.permutations(values)) if self.draw else self.rng.sample(list(values), len(values))

    def one_in(self, n: int) -> bool:
        return self.integer(0, n - 1) == 0


ANY = (0, 1, 2, 3, 4)  # ranks of the running tensor an op applies to
SOME = (1, 2, 3, 4)


def _activation(op: str):
    def gen(g: _Spec, r):
        args = {"elu": {"alpha": 0.5}, "leaky_relu": 0.2, "gelu": {"approximate": "tanh"}}.get(op)
        return (args if g.c.boolean() else None), r
    return gen


def _along_dim(g, r):
    return {"dim": g.c.integer(-r, r - 1)}, r


def _dropout(g, r):
    p = g.c.choice([0.0, 0.2, 0.5])
    return (f"${{{p} * 1.0}}" if g.c.one_in(6) else p), r


def _linear(g, r):
    return {"out_features": g.number(1, 8), "bias": g.c.boolean()}, r


def _choice(*values):
    return lambda g, r: (g.c.choice(values), r)


def _conv(transposed: bool):
    def gen(g, r):
        stride = g.c.integer(1, 2)
        args = {"out_channels": g.number(1, 6), "kernel_size": g.number(1, 3), "stride": stride,
                "bias": g.c.boolean()}
        if transposed:
            args["padding"] = g.c.integer(0, 1)
            args["output_padding"] = g.c.integer(0, stride - 1)
        else:
            args["padding"] = g.c.choice([0, 1, "same"] if stride == 1 else [0, 1])
            args["dilation"] = g.c.integer(1, 2)
        if g.c.one_in(6):
            args["groups"] = 2
        return args, r
    return gen


def _pool(g, r):
    kernel = g.c.integer(1, 3)
    args = {"kernel_size": kernel, "stride": g.c.choice([None, 1, 2, 3]), "padding": g.c.integer(0, kernel // 2)}
    if g.c.one_in(3):
        args["ceil_mode"] = True
    return args, r


def _upsample(g, r):
    mode = g.c.choice(["nearest", {2: "linear", 3: "bilinear", 4: "trilinear"}[r]])
    return g.c.choice([{"scale_factor": 2, "mode": mode}, {"size": 3, "mode": mode}]), r


def _recurrent(g, r):
    layers = g.c.integer(1, 2)
    args = {"hidden_size": g.number(1, 6), "num_layers": layers, "bidirectional": g.c.boolean(),
            "output": g.c.choice(["sequence", "last"]), "dropout": 0.1 if layers > 1 else 0.0}
    return args, 2 if args["output"] == "sequence" else 1


def _flatten(g, r):
    start = g.c.integer(0, r - 1)
    return (start if start else None), start + 1


def _mean(g, r):
    keep = g.c.boolean()
    return {"dim": g.c.integer(0, r - 1), "keepdim": keep}, r if keep else r - 1


def _select(g, r):
    return {"dim": g.c.integer(0, r - 1), "index": g.c.choice([0, -1])}, r - 1


def _permute(g, r):
    return g.c.permutation(list(range(r))), r


def _reshape(g, r):
    return g.c.choice([([-1], 1), ([-1, 1], 2), ([1, -1], 2)])


def _embedding(g, r):
    return {"num_embeddings": g.number(2, 10), "out": g.number(1, 6)}, r + 1


# op -> (the ranks it applies to, gen(spec, rank) -> (its value, the rank of its output))
OPS = {
    **{op: (ANY, _activation(op)) for op in ACTIVATIONS},
    "softmax": (SOME, _along_dim), "log_softmax": (SOME, _along_dim),
    "dropout": (ANY, _dropout), "dropout2d": ((3,), _choice(0.1, 0.5)),
    "linear": (SOME, _linear),
    "layernorm": (SOME, _choice(None, {"affine": False}, {"bias": False})),
    "groupnorm": ((2, 3, 4), lambda g, r: ({"num_groups": g.number(1, 2)}, r)),
    **{op: (ranks, _choice(None, {"affine": False}, {"momentum": None}))
       for op, ranks in (("batchnorm1d", (1, 2)), ("batchnorm2d", (3,)), ("batchnorm3d", (4,)))},
    **{f"conv{n}d": ((n + 1,), _conv(False)) for n in (1, 2, 3)},
    **{f"conv_transpose{n}d": ((n + 1,), _conv(True)) for n in (1, 2, 3)},
    **{f"{kind}pool{n}d": ((n + 1,), _pool) for kind in ("max", "avg") for n in (1, 2, 3)},
    **{f"adaptive_{kind}pool{n}d": ((n + 1,), _choice(1, 2, 3)) for kind in ("max", "avg") for n in (1, 2, 3)},
    "upsample": ((2, 3, 4), _upsample),
    "rnn": ((2,), _recurrent), "lstm": ((2,), _recurrent), "gru": ((2,), _recurrent),
    "self_attention": ((2,), lambda g, r: ({"num_heads": g.c.integer(1, 2),
                                            "dropout": g.c.choice([0.0, 0.1]), "causal": g.c.boolean()}, r)),
    "class_token": ((2,), _choice(None)), "pos_embedding": ((2,), _choice(None, 16)),
    "flatten": (SOME, _flatten), "mean": (SOME, _mean), "select": ((2, 3, 4), _select),
    "permute": (SOME, _permute), "reshape": (ANY, _reshape),
    "embedding": ((), _embedding),  # drawn first on integer inputs only
    **{op: (ANY, _choice(None)) for op in ("relu6", "hardswish", "hardsigmoid", "selu", "mish")},
    "hardtanh": (ANY, _choice(None, {"min_val": 0.0, "max_val": 6.0})), "softplus": (ANY, _choice(None, 2.0)),
    "prelu": (SOME, _choice(None, {"num_parameters": "${in_shape[0]}", "init": 0.1})),
    "glu": (SOME, _choice(None, 0)),
    "stochastic_depth": (ANY, _choice(0.2, {"p": 0.5, "mode": "batch"})),
    "layer_scale": (SOME, _choice(None, {"init_value": 0.5, "shape": [1]})),
    "layernorm2d": ((3,), _choice(None, {"affine": False}, {"bias": False, "eps": 1.0e-6})),
    "unsqueeze": ((0, 1, 2, 3), lambda g, r: (g.c.integer(-r - 1, r), r + 1)),
    "squeeze": (SOME, lambda g, r: (g.c.integer(-r, r - 1), r - 1)),
    "unflatten": ((1, 2, 3), lambda g, r: ({"dim": g.c.integer(0, r - 1), "sizes": g.c.choice([[-1, 1], [1, -1]])},
                                           r + 1)),
    "roll": (SOME, lambda g, r: ({"shifts": g.c.integer(-2, 2), "dims": g.c.integer(-r, r - 1)}, r)),
    "pad": ((2, 3, 4), _choice([1, 1], {"pad": [1, 0, 0, 1], "mode": "replicate"},
                               {"pad": [1, 1], "mode": "reflect"}, {"pad": [0, -1], "value": 1.0})),
    "channel_shuffle": ((2, 3, 4), _choice(1, 2)),
    "sinusoidal_pos_embedding": ((2,), _choice(None)),
    # a [C, H, W] draw read as channels-last [H, W, C]: one head divides any last dim
    "shifted_window_attention": ((3,), _choice({"heads": 1, "window": 2, "shift": 1}, {"heads": 1, "window": [3, 2]})),
    "patch_merging": ((3,), _choice(None, {"out": 4})),
    # two inputs with arguments: drawn without `from:`, so it is refused cleanly (one input); `merge` writes
    # `{op: [a, b]}` only, which binds to `from`, not to this op's main argument
    "cross_attention": ((2,), lambda g, r: ({"num_heads": g.c.integer(1, 2)}, r)),
}
MERGES = ["add", "multiply", "concat", "reparameterize", "resize_as"]  # drawn by `_Spec.merge`


def _input_shape(c: Chooser, rank: int) -> list:
    """A per-sample shape of `rank` dims, a symbolic one now and then where convs and pools slide."""
    if rank == 1:
        return [c.integer(1, 12)]
    if rank == 2:
        if c.boolean():  # a sequence [T, F]
            return [c.choice([3, 5, 8, "T"]), c.integer(1, 6)]
        return [c.integer(1, 4), c.choice([4, 7, 12, "L"])]  # a signal [C, L]
    if rank == 3:
        return [c.integer(1, 4), c.choice([3, 6, 10, "H"]), c.choice([3, 7, 10, "W"])]
    return [c.integer(1, 3), c.choice([2, 3, 5, "D"]), c.integer(2, 5), c.integer(2, 5)]


def _body(rank: int) -> dict:
    """A layer that keeps the shape of a tensor of `rank` (its width read from the tensor)."""
    return {3: {"conv2d": {"out_channels": "${in_channels}", "kernel_size": 3, "padding": 1}},
            4: {"conv3d": {"out_channels": "${in_channels}", "kernel_size": 1}}}.get(
        rank, {"linear": "${in_features}"})


class _Spec:
    """One spec under construction: its layers, named values (name -> rank), blocks, inputs not yet used."""

    def __init__(self, c: Chooser):
        self.c = c
        self.layers: list[dict] = []
        self.named: dict[str, int] = {}
        self.blocks: dict[str, Any] = {}
        self.args: dict[str, Any] = {}
        self.unused: list[str] = []  # named inputs no layer reads yet
        self.count = 0

    def name(self) -> str:
        self.count += 1
        return f"l{self.count}"

    def number(self, low: int, high: int) -> int | str:
        """A whole number in [low, high], now and then written as an expression that makes it."""
        n = self.c.integer(low, high)
        if not self.c.one_in(5):
            return n
        forms = [f"${{{n}}}", f"${{{n + 1} - 1}}", f"${{max({n}, {low})}}", f"${{{2 * n} // 2}}",
                 f"${{len([{', '.join(['0'] * n)}])}}", f"${{int({n} * 1.0)}}", f"${{abs(-{n})}}",
                 f"${{{n} if len(in_shape) > 0 else {low}}}"]
        if "width" in self.args:
            forms += [f"${{width + {n - self.args['width']}}}", f"${{min({n}, width + {n})}}"]
        return self.c.choice(forms)

    def tree(self) -> dict:
        c = self.c
        kind = c.choice(["tensor", "tensor", "tensor", "tokens", "two", "several"])
        spec: dict[str, Any] = {"name": "random"}
        if c.one_in(3):
            self.args = spec["args"] = {"width": c.integer(1, 4), "depth": c.integer(0, 2), "flag": c.boolean()}
        if kind == "tokens":
            spec["input"] = {"shape": [c.choice(["T", 4])], "dtype": "int64"}
            args, rank = _embedding(self, 1)
            self.layers.append({"embedding": args})
        elif kind == "tensor":
            rank = c.integer(1, 4)
            spec["input"] = _input_shape(c, rank)
            self.named["input"] = rank
        elif kind == "two":  # two inputs of one shape, merged first
            shape = _input_shape(c, c.integer(1, 4))
            spec["inputs"] = {"a": shape, "b": list(shape)}
            self.layers.append({c.choice(["add", "multiply", "concat"]): ["a", "b"]})
            rank = len(shape)
        else:  # two or three inputs of any ranks: the first read by `from:`, the others used later
            names = ["a", "b", "c"][:c.integer(2, 3)]
            spec["inputs"] = {n: _input_shape(c, c.integer(1, 4)) for n in names}
            self.named.update({n: len(s) for n, s in spec["inputs"].items()})
            item, rank = self.op(len(spec["inputs"]["a"]))
            self.layers.append({**item, "from": "a"})
            self.unused = names[1:]
        if c.boolean():
            spec["init"] = c.choice(INITS)
        for _ in range(c.integer(1, 6)):
            rank = self.item(rank)
        rank = self.use_inputs(rank)
        self.running(rank)
        outputs = self.dangling()
        if len(self.named) > 1 and c.one_in(4):
            others = sorted(set(self.named) - set(outputs) - {"input", *spec.get("inputs", {})})
            if others:
                outputs.append(c.choice(others))
        if outputs != [self.layers[-1].get("name")]:
            spec["outputs"] = outputs
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

    def use_inputs(self, rank: int) -> int:
        """Read each input no layer has read: merged into the running value, or a branch that is an output."""
        for name in self.unused:
            if self.named[name] == rank and self.c.boolean():
                self.layers.append({self.c.choice(["add", "concat"]): [self.running(rank), name]})
            else:
                current = self.running(rank)
                item, out = self.op(self.named[name])
                self.layers.append({**item, "from": name, "name": self.name()})
                self.named[self.layers[-1]["name"]] = out
                if self.c.one_in(3):  # the branch continues the chain; the value before it is an output
                    rank = out
                else:
                    self.layers.append({"identity": None, "from": current})
        return rank

    def dangling(self) -> list[str]:
        """The top-level layers whose value no later layer reads, the last one first: the outputs."""
        index = {layer["name"]: i for i, layer in enumerate(self.layers) if "name" in layer}
        read = set()
        for i, layer in enumerate(self.layers):
            sources = next((v for k, v in layer.items() if k in MERGES and isinstance(v, list)), layer.get("from"))
            if sources is None:
                read.add(i - 1)  # the previous layer's value runs on into this one
            else:
                sources = [sources] if isinstance(sources, str) else sources
                read.update(index.get(s.partition(".")[0]) for s in sources)  # `x.0`: a part of the `chunk` `x`
        outputs = [self.running(0)]  # named already: `running` keeps its rank
        for i, layer in enumerate(self.layers[:-1]):
            if i not in read:
                layer.setdefault("name", self.name())
                outputs.append(layer["name"])
        return outputs

    def item(self, rank: int) -> int:
        """Append one item; return the rank of its output."""
        c = self.c
        choice = c.choice(["op"] * 6 + ["merge", "residual", "block", "nest", "pair", "fanout", "shared", "parts"])
        item, rank = getattr(self, choice)(rank)
        if "name" in item or c.one_in(5):
            item.setdefault("name", self.name())
            self.named[item["name"]] = rank
        if c.one_in(7):
            item["when"] = c.choice([True, False, "${in_shape[0] > 2}", "${len(in_shape) > 1}"] +
                                    (["$flag", "${not flag}"] if self.args else []))
        if c.one_in(7) and "share" not in item:  # a shared layer is frozen and initialized where it is made
            item["frozen"] = True
        if c.one_in(7) and "share" not in item:
            item["init"] = c.choice(INITS)
        self.layers.append(item)
        return rank

    def op(self, rank: int) -> tuple[dict, int]:
        op = self.c.choice(sorted(op for op, (ranks, _) in OPS.items() if rank in ranks))
        args, rank = OPS[op][1](self, rank)
        return {op: args}, rank

    def merge(self, rank: int) -> tuple[dict, int]:
        """Merge the running value with an earlier one of the same rank."""
        current = self.running(rank)
        others = sorted(n for n, r in self.named.items() if r == rank)
        op, other = self.c.choice(MERGES), self.c.choice(others)
        self.read([other])
        return {op: [current, other]}, rank

    def read(self, names: list[str]) -> None:
        for name in names:
            if name in self.unused:
                self.unused.remove(name)

    def residual(self, rank: int) -> tuple[dict, int]:
        """A group: a shape-keeping layer `f`, then `add: [f, input]`; repeated now and then, its add
        skipped in some copies."""
        item = {"name": self.name(), "layers": [{**_body(rank), "name": "f"}, {"add": ["f", "input"]}]}
        if self.c.one_in(3):
            item["repeat"] = self.c.choice([2, 3, "$depth" if self.args else 1])
            item["layers"][1]["when"] = self.c.choice(["${index % 2 == 0}", "${index < 1}"])
        return item, rank

    def block(self, rank: int) -> tuple[dict, int]:
        """A use of the block for this rank (defined on first use), repeated 0 to 2 times."""
        name = self.define_block(rank)
        width = self.number(1, 4)
        repeat = self.c.choice([0, 1, 2, "${depth}" if self.args else 2])
        return {name: {"width": width}, "repeat": repeat, "name": self.name()}, rank

    def define_block(self, rank: int) -> str:
        name = f"block{rank}"
        if name not in self.blocks:
            first = {3: {"conv2d": {"out_channels": "$width", "kernel_size": 3, "padding": 1}}}.get(
                rank, {"linear": "$width"})
            self.blocks[name] = {"args": {"width": "int"}, "layers": [
                {**first, "name": "fc"},
                {self.c.choice(ACTIVATIONS): None, "name": "act"},
                {"add": ["act", "input"],
                 "when": "${in_shape[0] == width}" if rank == 3 else "${in_features == width}"},
            ]}
        return name

    def nest(self, rank: int) -> tuple[dict, int]:
        """A block that uses the block for this rank, `depth` times, with an expression for its width."""
        inner = self.define_block(rank)
        name = f"nest{rank}"
        if name not in self.blocks:
            self.blocks[name] = {"args": {"width": "int", "depth": 1}, "layers": [
                {inner: {"width": "${width * 2}"}, "repeat": "$depth", "name": "inner"},
                {**_body(rank), "name": "post", "when": "${depth > 0}"},
            ]}
        return {name: {"width": self.number(1, 3), "depth": self.c.integer(0, 2)}}, rank

    def pair(self, rank: int) -> tuple[dict, int]:
        """A block of two inputs, the running value and an earlier one of its rank, naming its output."""
        name = f"pair{rank}"
        if name not in self.blocks:
            self.blocks[name] = {"inputs": ["x", "y"], "output": "merged", "layers": [
                {self.c.choice(ACTIVATIONS): None, "from": "y", "name": "gate"},
                {self.c.choice(["add", "multiply"]): ["x", "gate"], "name": "merged"},
            ]}
        current = self.running(rank)
        other = self.c.choice(sorted(n for n, r in self.named.items() if r == rank))
        self.read([other])
        return {name: None, "from": [current, other]}, rank

    def shared(self, rank: int) -> tuple[dict, int]:
        """Weight sharing: a shape-keeping layer, then `share:` applying it again (repeated now and then)."""
        name = self.name()
        self.layers.append({**_body(rank), "name": name})
        self.named[name] = rank
        item: dict[str, Any] = {"share": name}
        if self.c.one_in(2):
            item["repeat"] = self.c.choice([2, 3])
        return item, rank

    def parts(self, rank: int) -> tuple[dict, int]:
        """Several outputs: a `chunk` or `split` along a dim, then a merge of its parts (`concat` along that dim
        gives the shape back; `add` needs equal parts)."""
        if rank == 0:
            return self.op(rank)
        name, dim = self.name(), self.c.integer(-rank, rank - 1)
        if self.c.boolean():
            count = self.c.choice([1, 2, 3])
            self.layers.append({"chunk": {"chunks": count, "dim": dim}, "name": name})
        else:
            count = 2
            self.layers.append({"split": {"sizes": [f"${{in_shape[{dim}] - 1}}", 1], "dim": dim}, "name": name})
        parts = [f"{name}.{i}" for i in range(count)]
        if count == 1:
            return {"identity": None, "from": parts[0]}, rank
        if self.c.boolean():
            return {"add": parts}, rank
        return {"concat": {"dim": dim}, "from": parts}, rank

    def fanout(self, rank: int) -> tuple[dict, int]:
        """An op reading an earlier named value through `from:`."""
        if not self.named:
            return self.op(rank)
        source = self.c.choice(sorted(self.named))
        self.read([source])
        item, rank = self.op(self.named[source])
        return {**item, "from": source}, rank


def _text(c: Chooser) -> str:
    return yaml.dump(_Spec(c).tree(), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
                     allow_unicode=True)


@st.composite
def specs(draw) -> str:
    """A random spec as YAML text."""
    return _text(Chooser(draw=draw))


def random_spec(rng: random.Random) -> str:
    """A random spec as YAML text, from a seeded generator (the same seed, the same spec)."""
    return _text(Chooser(rng=rng))
