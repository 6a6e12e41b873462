"""Fuzzing netspec: random valid specs checked against torch (`differential`), mutated specs that must get a
located answer (`mutate`, `run`), and coverage-guided harnesses for the loader and the expression evaluator
(`atheris_loader`, `atheris_expr`). docs/security.md says what runs where and how to reproduce a failure."""
