"""Training from a spec's `train:` section (docs/training.md).

    run = netspec.train("specs/cnn_digits.yaml", epochs=5)   # a Run: run.path, run.summary

The registries (data, transforms, augmentations, losses, optimizers, schedules) and
`config` import no torch, so `netspec validate` checks a `train:` section without it;
`session.train` does the work. `netspec.train` is both this package and the function:
the module is callable, so `netspec.train(spec)` and `netspec.train.config` both hold.
"""

from __future__ import annotations

import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, spec, **kwargs):
        """`netspec.train.session.train(spec, **kwargs)`: train `spec` into a run folder; a `Run`."""
        from .session import train

        return train(spec, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
