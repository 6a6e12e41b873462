"""Exports of a spec to other tools' formats: nothing in the core imports this package.

- `netspec.export.schema`: a JSON Schema of the whole language, generated from the layer
  catalog and the training registries (no torch), for editors and other validators.
- `netspec.export.onnx`: the network as an ONNX model, through torch's exporter (imports torch).

See docs/export.md.
"""
