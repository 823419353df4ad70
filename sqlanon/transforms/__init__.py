"""The transform registry: importing this package registers every transform."""

from sqlanon.plan.model import ColumnStep
from sqlanon.transforms import (  # noqa: F401 - imported to register
    age,
    bucket,
    constant,
    drop,
    generalize,
    keep,
    mask,
    mask_email,
    nullify,
    prefix,
    pseudonymize,
    truncate_date,
)
from sqlanon.transforms.base import REGISTRY, ColumnContext, LowerContext, Transform

__all__ = ["REGISTRY", "ColumnContext", "LowerContext", "Transform", "known_types"]


def known_types(step: ColumnStep) -> tuple[str | None, str | None]:
    """(input, output) logical types that metadata can promise. A column whose `type:` is
    not declared is read as the transform's default type, but when the output follows the
    input (keep, bucket, truncate_date …) the view has the source column's own type, which
    only the warehouse knows: None then, rather than a type the view does not have."""
    t = REGISTRY.get(step.transform)
    if step.type_declared or t is None:  # not a column transform: a release's measure
        return step.input_type, step.output_type
    # keyed by the parameters' repr: 10 and 10.0 are equal keys but may type a bucket apart
    key = (step.transform, repr(step.params))
    fixed = _OUTPUT_FIXED.get(key)
    if fixed is None:
        fixed = _OUTPUT_FIXED[key] = _output_fixed(t, step.params)
    return None, step.output_type if fixed else None


# whether a transform's output type is the same for every type it accepts, per parameters:
# the manifest asks once per column (50,000 times for a large policy, each trying every type)
_OUTPUT_FIXED: dict[tuple[str, str], bool] = {}


def _output_fixed(t: Transform, params: object) -> bool:
    given = dict(params)  # type: ignore[call-overload]
    outputs = set()
    for accepted in t.accepts:
        try:
            outputs.add(t.output_type(accepted, given))
        except (KeyError, TypeError, ValueError):
            outputs.add(None)
    return len(outputs) == 1
