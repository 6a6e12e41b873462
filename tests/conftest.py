"""Hypothesis profiles: CI replays a fixed set of examples (a red CI is then reproducible);
local runs explore new ones. `HYPOTHESIS_PROFILE=deep` runs many more."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.register_profile("deep", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
