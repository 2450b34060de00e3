"""Hypothesis profiles: "default" (quick) and "long"; pick one with HYPOTHESIS_PROFILE."""

import os

from hypothesis import settings

settings.register_profile("default", max_examples=25, deadline=None)
settings.register_profile("long", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
