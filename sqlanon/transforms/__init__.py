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
    params = dict(step.params)
    outputs = set()
    for accepted in t.accepts:
        try:
            outputs.add(t.output_type(accepted, params))
        except (KeyError, TypeError, ValueError):
            outputs.add(None)
    return None, step.output_type if len(outputs) == 1 else None
