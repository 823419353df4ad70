"""The validated policy: what the user wrote, checked, with every part's location kept so
that later stages (the planner's cross-table checks) can still point at the source."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlanon.plan.model import Expression, InputFile, Source
from sqlanon.policy.diagnostics import Location

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    key_node: Any  # the column's key in the policy (a YScalar); its location on demand
    source: str
    transform: str
    params: tuple[tuple[str, Any], ...]
    input_type: str
    output_type: str | None
    declared_class: str | None
    key: str | None
    lookup: tuple[tuple[str, str], ...] | None = None
    description: str | None = None
    rule: str | None = None
    type_declared: bool = False  # `type:` written (else the transform's default type)

    @property
    def loc(self) -> Location:
        loc: Location = self.key_node.loc
        return loc


@dataclass(frozen=True)
class RetentionSpec:
    column: str
    max_age_days: int
    loc: Location


@dataclass(frozen=True)
class SampleSpec:
    unit: str
    fraction: Decimal | int
    key: str
    loc: Location


@dataclass(frozen=True)
class KAnonymitySpec:
    quasi_identifiers: tuple[str, ...]
    k: int
    action: str
    loc: Location


@dataclass(frozen=True)
class SensitiveSpec:
    """l-diversity (`l`) or t-closeness (`t`) over one sensitive column."""

    sensitive: str
    level: Decimal | int
    loc: Location


@dataclass(frozen=True)
class UtilityCheckSpec:
    """A declared utility check: `kind` over the named columns or measures, bounded by `limit`."""

    kind: str
    refs: tuple[str, ...]
    limit: Decimal | int
    loc: Location


@dataclass(frozen=True)
class TableSpec:
    id: str
    loc: Location
    source: Source
    target: tuple[str, ...]
    target_loc: Location
    grants: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    retention: RetentionSpec | None = None
    sample: SampleSpec | None = None
    k_anonymity: KAnonymitySpec | None = None
    l_diversity: SensitiveSpec | None = None
    t_closeness: SensitiveSpec | None = None
    description: str | None = None
    utility: tuple[UtilityCheckSpec, ...] = ()


@dataclass(frozen=True)
class MeasureSpec:
    name: str
    agg: str  # count_units | count | sum | avg
    column: str | Expression | None
    clamp: tuple[Decimal | int, Decimal | int] | None
    input_type: str
    loc: Location


# What a key is used for: each purpose hashes its own kind of message (docs/keys.md), and a key
# serves one purpose only.
PSEUDONYM, SAMPLE, NOISE = "pseudonym", "sample", "noise"
KEY_PURPOSES = {
    PSEUDONYM: "column pseudonyms",
    SAMPLE: "sampling",
    NOISE: "release noise",
}


class KeyUses(dict[str, list[tuple[str, Location]]]):
    """Key name → each use of it in the policy: (purpose, where)."""

    def use(self, name: str, purpose: str, loc: Location) -> None:
        self.setdefault(name, []).append((purpose, loc))


@dataclass(frozen=True)
class ReleaseSpec:
    """A differentially private aggregate table, refreshed per epoch."""

    id: str
    loc: Location
    source: Source
    target: tuple[str, ...]
    target_loc: Location
    privacy_unit: str
    unit_type: str
    epsilon: Decimal | int
    delta: Decimal | int
    group_by: tuple[ColumnSpec, ...]
    public_groups: tuple[tuple[str, ...], ...] | None
    max_groups_per_unit: int
    max_rows_per_unit_per_group: int
    max_rows_per_unit: int | None  # a total over all groups (SmartNoise's max_ids)
    measures: tuple[MeasureSpec, ...]
    grants: tuple[str, ...] = ()
    key: str = "noise"
    description: str | None = None
    utility: tuple[UtilityCheckSpec, ...] = ()


@dataclass(frozen=True)
class SyntheticSpec:
    """A differentially private synthetic table, refreshed per epoch (docs/synthetic.md)."""

    id: str
    loc: Location
    source: Source
    target: tuple[str, ...]
    target_loc: Location
    privacy_unit: str | None  # None: `rows_are_units: true`
    unit_type: str
    max_rows_per_unit: int
    epsilon: Decimal | int
    attributes: tuple[ColumnSpec, ...]
    domains: tuple[tuple[str, ...], ...]  # per attribute, canonical texts
    structure: tuple[tuple[str, str], ...]
    rows: int | None
    auto_structure: bool = False  # `structure: auto`: the tree is chosen privately
    utility: tuple[UtilityCheckSpec, ...] = ()
    grants: tuple[str, ...] = ()
    key: str = "noise"
    description: str | None = None


@dataclass(frozen=True)
class TableFacts:
    """What reading one table used beyond its own text: the keys with their purposes, and the
    files (hierarchies) it read — what an incremental compile must check before reusing it."""

    key_uses: tuple[tuple[str, str], ...]
    inputs: tuple[InputFile, ...]


@dataclass(frozen=True)
class PolicySpec:
    file: str
    sha256: str
    name: str
    loc: Location
    key_table: tuple[str, ...] | None
    key_versions: dict[str, int]
    unlisted_columns: str
    tables: tuple[TableSpec, ...]
    releases: tuple[ReleaseSpec, ...] = ()
    budget: tuple[Decimal | int, Decimal | int] | None = None
    ledger: tuple[str, ...] | None = None
    inputs: tuple[InputFile, ...] = field(default=())
    synthetic: tuple[SyntheticSpec, ...] = ()
    table_facts: tuple[TableFacts, ...] = ()  # one per table, in order
