"""The plan: immutable data compiled from the policy (model.py), built and checked by
build.py; the logical types, canonical values and DP mechanism parameters it carries."""
