"""The transform registry: importing this package registers every transform."""

from . import (  # noqa: F401 - imported to register
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
from .base import REGISTRY, ColumnContext, LowerContext, Transform

__all__ = ["REGISTRY", "ColumnContext", "LowerContext", "Transform"]
