"""The plan: immutable, dialect-free data describing every object to build.

It holds no sqlglot nodes and no SQL; lowering turns it into SQL per dialect. Its JSON form is
what `sqlanon explain --format json` prints and what the manifest's lineage is built from.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import weakref
from dataclasses import dataclass, field, fields
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Any

DIRECT = "direct_identifier"
QUASI = "quasi_identifier"
SENSITIVE = "sensitive"
OTHER = "other"
PRIVACY_CLASSES = (DIRECT, QUASI, SENSITIVE, OTHER)

Params = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class KeyRef:
    """A secret named by the policy; only its name and version ever leave the warehouse."""

    name: str
    version: int


@dataclass(frozen=True)
class SourceQuery:
    """A source written as one SELECT in a reference dialect (sqlanon/plan/query.py says
    what it may contain); lowered to each dialect by sqlglot (sqlanon/sql/query.py)."""

    sql: str
    dialect: str
    reads: tuple[tuple[str, ...], ...]  # the relations it names, sorted
    columns: tuple[str, ...]  # its output columns

    @property
    def label(self) -> str:
        return "query over " + ", ".join(".".join(r) for r in self.reads)


# what a view or release reads: a relation's name, or a query
Source = tuple[str, ...] | SourceQuery


def source_label(source: Source) -> str:
    """How messages and documents name a source."""
    return source.label if isinstance(source, SourceQuery) else ".".join(source)


def source_reads(source: Source) -> tuple[tuple[str, ...], ...]:
    """The relations a source reads (for lineage and the catalog checks)."""
    return source.reads if isinstance(source, SourceQuery) else (source,)


@dataclass(frozen=True)
class Expression:
    """A measure's input computed from the source's columns (sqlanon/plan/query.py)."""

    sql: str
    dialect: str
    columns: tuple[str, ...]  # the source columns it reads

    def __str__(self) -> str:
        return self.sql


@dataclass(frozen=True, repr=False)  # the dataclass repr's text, kept (__repr__)
class ColumnStep:
    output: str
    sources: tuple[str, ...]
    transform: str
    params: Params
    input_type: str | None
    output_type: str | None
    privacy_class: str
    key: KeyRef | None = None
    lookup: tuple[tuple[str, str], ...] | None = None  # value → replacement (hierarchies)
    description: str | None = None
    # whether input_type was written in the policy (drift checks it against the live column);
    # not in repr, hence not in digests: it changes no SQL
    type_declared: bool = field(default=False, repr=False)

    def param(self, name: str, default: Any = None) -> Any:
        for key, value in self.params:
            if key == name:
                return value
        return default

    @property
    def emitted(self) -> bool:
        return self.transform != "drop"

    def __hash__(self) -> int:
        # kept once computed: lowering looks each step up in its dialect's column memo (the
        # dataclass hash would hash every field again, each time)
        try:
            return self.__dict__["_hash"]  # type: ignore[no-any-return]
        except KeyError:
            found = self.__dict__["_hash"] = hash(_values(self))
            return found

    def __repr__(self) -> str:
        # the dataclass's own form, kept once made: a view's digest is its repr's, and the
        # view repeats steps other views hold (one text per step, not per view that uses it)
        try:
            return self.__dict__["_repr"]  # type: ignore[no-any-return]
        except KeyError:
            shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
            found = self.__dict__["_repr"] = f"{type(self).__qualname__}({shown})"
            return found

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # a step read back from a pickle (the second half of a split read, the plan cache) is
        # the same object as an equal step already in this process; the kept hash is never
        # carried (another interpreter hashes strings differently), nor the kept repr
        return _unpickled_step, _values(self)

    def raw_copy(self, output: str) -> ColumnStep:
        """This step's source column passed through unchanged under another name: for
        comparing raw with anonymized values (demo, utility), never for release."""
        return ColumnStep(
            output=output,
            sources=self.sources,
            transform="keep",
            params=(),
            input_type=self.input_type,
            output_type=self.input_type,
            privacy_class=self.privacy_class,
        )


_STEP_FIELDS = tuple(f.name for f in fields(ColumnStep))


def _values(step: ColumnStep) -> tuple[Any, ...]:
    return tuple(getattr(step, name) for name in _STEP_FIELDS)


# every step of the plans in this process, by value, while a plan holds it
_STEPS: weakref.WeakValueDictionary[tuple[Any, ...], ColumnStep] = weakref.WeakValueDictionary()


def shared_step(step: ColumnStep) -> ColumnStep:
    """The one object equal to `step` in this process. A warehouse's tables repeat their
    columns (578 distinct steps among the 50,000 of benchmarks/compile_scale.py), and lowering
    looks each step up in a column memo per dialect (sqlanon/sql/memo.py): equal steps that
    are one object compare by identity, not field by field (with the kept hash, a third less
    lowering of that policy in one process). A step whose parameters cannot be hashed is
    returned as it is."""
    key = _values(step)
    try:
        found = _STEPS.get(key)
    except TypeError:
        return step
    if found is None:
        _STEPS[key] = found = step
    return found


def _unpickled_step(*values: Any) -> ColumnStep:
    return shared_step(ColumnStep(*values))


@dataclass(frozen=True)
class Retention:
    column: str
    max_age_days: int


@dataclass(frozen=True)
class Sample:
    unit: str
    unit_type: str
    fraction: Decimal | int
    key: KeyRef

    @property
    def threshold(self) -> int:
        """Units whose 52-bit keyed hash is below this are kept: exact integer arithmetic."""
        return int(self.fraction * (1 << 52))


@dataclass(frozen=True)
class KAnonymity:
    quasi_identifiers: tuple[str, ...]
    k: int
    action: str  # suppress | fail


@dataclass(frozen=True)
class LDiversity:
    sensitive: str
    l: int  # noqa: E741 - the model's own name


@dataclass(frozen=True)
class TCloseness:
    sensitive: str
    t: Decimal | int


@dataclass(frozen=True)
class UtilityCheck:
    """What an analyst needs to stay true (docs/utility.md): checked by `sqlanon utility`."""

    # suppressed | mean_shift | distance | correlation | median_relative_error | pair_distance
    kind: str
    refs: tuple[str, ...]  # columns of the view, or measures of the release
    limit: Decimal | int

    def describe(self) -> str:
        what = {
            "suppressed": "suppressed rows",
            "mean_shift": f"relative shift of mean({', '.join(self.refs)})",
            "distance": f"distribution distance of {', '.join(self.refs)}",
            "correlation": f"change of corr({', '.join(self.refs)})",
            "median_relative_error": f"median relative error of {', '.join(self.refs)}",
            "pair_distance": f"total-variation distance of {' × '.join(self.refs)}",
        }[self.kind]
        return f"{what} ≤ {self.limit}"


@dataclass(frozen=True)
class ViewPlan:
    name: str  # the table's id in the policy
    policy: str  # policy name
    policy_file: str
    source: Source
    target: tuple[str, ...]
    grants: tuple[str, ...]
    columns: tuple[ColumnStep, ...]
    key_table: tuple[str, ...] | None
    retention: Retention | None = None
    sample: Sample | None = None
    k_anonymity: KAnonymity | None = None
    l_diversity: LDiversity | None = None
    t_closeness: TCloseness | None = None
    description: str | None = None
    unlisted_columns: str = "drop"  # drop | error (checked where the source can be read)
    # not in repr, hence not in the digest: utility checks change no SQL, so no file header
    utility: tuple[UtilityCheck, ...] = field(default=(), repr=False)
    digest: str = field(default="", compare=False)

    @cached_property
    def emitted_columns(self) -> tuple[ColumnStep, ...]:
        """Computed once per plan object (lowering, lookups and the manifest each ask for
        it, for every view of every dialect); not a field, so not in eq, repr or digest."""
        return tuple(c for c in self.columns if c.emitted)

    @cached_property
    def keys(self) -> tuple[KeyRef, ...]:
        """Every key the view reads, in a stable order."""
        found = {c.key for c in self.columns if c.key and c.emitted}
        if self.sample:
            found.add(self.sample.key)
        return tuple(sorted(found, key=lambda k: (k.name, k.version)))


@dataclass(frozen=True)
class NoiseComponent:
    """One discrete-Laplace draw per group: value = granularity × (round(true/g) + Z)."""

    name: str  # units | rows | sum
    epsilon: Fraction
    sensitivity: Fraction  # L1, in units of the granularity
    granularity: Fraction  # a power of two (1 for counts)
    ln_p: float  # ln of the noise's ratio p = exp(-ε/Δ)
    half_width: int  # in granularity units: P(|Z| ≤ half_width) ≥ its confidence


@dataclass(frozen=True)
class MeasurePlan:
    name: str
    agg: str  # count_units | count | sum | avg
    column: str | Expression | None
    clamp: tuple[Decimal, Decimal] | None
    input_type: str
    epsilon: Fraction
    delta: Fraction
    components: tuple[NoiseComponent, ...]
    # avg sums values minus the clamp's midpoint: half the sensitivity of summing them raw
    center: Decimal = Decimal(0)


@dataclass(frozen=True)
class Selection:
    """Groups are released when a noisy count exceeds `threshold`: of units, or, in a release
    bounded by its rows per unit alone, of the bounded rows (docs/dp.md#groups-public-or-
    thresholded). `reads` names the noise component compared: "units" (the selection's own
    or a count_units measure's), "rows" (its own), or a count measure's "<name>.rows"."""

    threshold: int
    delta_per_group: float  # the chance that one group a single unit creates appears
    reads: str
    noise: NoiseComponent | None  # its own draw, when no measure provides the count

    @property
    def counts_units(self) -> bool:
        return self.reads == "units"


@dataclass(frozen=True)
class Budget:
    """What all of a policy's refreshes in one epoch may spend together (basic composition);
    each refresh checks it against the ledger before it writes anything."""

    policy: str
    epsilon: Fraction
    delta: Fraction


@dataclass(frozen=True)
class ReleasePlan:
    name: str
    policy: str
    policy_file: str
    source: Source
    target: tuple[str, ...]
    grants: tuple[str, ...]
    privacy_unit: str
    unit_type: str
    group_by: tuple[ColumnStep, ...]
    public_groups: tuple[tuple[str, ...], ...] | None
    max_groups_per_unit: int
    max_rows_per_unit_per_group: int
    max_rows_per_unit: int | None  # a total over all groups (SmartNoise's max_ids)
    measures: tuple[MeasurePlan, ...]
    selection: Selection | None
    epsilon: Fraction
    delta: Fraction
    key: KeyRef
    key_table: tuple[str, ...]
    ledger: tuple[str, ...]
    budget: Budget  # the policy's, checked by the refresh against the ledger
    description: str | None = None
    # not in repr, hence not in the digest: utility checks change no SQL, so no file header
    utility: tuple[UtilityCheck, ...] = field(default=(), repr=False)
    digest: str = field(default="", compare=False)

    @property
    def keys(self) -> tuple[KeyRef, ...]:
        return (self.key,)

    @property
    def target_name(self) -> str:
        """The release's identity in the warehouse: one table is written by one release."""
        return ".".join(self.target)

    @property
    def counts_units(self) -> bool:
        """Whether anything reads the count of units per group (a count_units measure, or the
        selection): only then does a refresh count each group's distinct units."""
        selection = self.selection is not None and self.selection.counts_units
        return selection or any(m.agg == "count_units" for m in self.measures)

    @property
    def sensitivities(self) -> tuple[int, int]:
        return contribution_bounds(
            self.max_groups_per_unit, self.max_rows_per_unit_per_group, self.max_rows_per_unit
        )


def rows_only(groups: int, rows_per_group: int, rows: int | None) -> bool:
    """A total of rows per unit that the groups and rows-per-group bounds cannot tighten: a
    unit's rows then need no counting per group, and its unit and row sensitivities agree."""
    return rows is not None and groups >= rows and rows_per_group >= rows


def contribution_bounds(groups: int, rows_per_group: int, rows: int | None) -> tuple[int, int]:
    """(the most groups one unit appears in, the most rows it adds over all groups): the L1
    sensitivities of unit counts and of row counts."""
    both = groups * rows_per_group
    if rows is None:
        return groups, both
    return min(groups, rows), min(both, rows)


@dataclass(frozen=True)
class SyntheticAttribute:
    """One column of a synthetic table: the transform that discretizes its source column,
    and the public domain of the values it may take (canonical texts of the output type,
    in the policy's order); a row with a value outside the domain is not used."""

    step: ColumnStep
    domain: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.step.output


@dataclass(frozen=True)
class SyntheticPlan:
    """A differentially private synthetic table (docs/synthetic.md): noisy marginals of the
    declared attribute pairs (a forest) and of each attribute in no pair, measured per refresh
    with the release noise, and rows drawn along the forest from them, all in the warehouse.
    `edges` are (parent, child) positions into `attributes`, in the order the rows are drawn;
    the attributes in no edge's child position are drawn first, from their own marginal.

    With `auto` (`structure: auto`) there are no declared edges: every refresh measures each
    attribute alone (`one_ways`), chooses a spanning tree with one exponential mechanism per
    attribute after the first (`selection_epsilon` each, Prim's order from the first attribute;
    each pair scored by how far its true counts are from the product of the noisy one-ways),
    and draws the rows from the chosen pairs' noisy counts (`cells`; every pair is noised, only
    the chosen ones are read)."""

    name: str
    policy: str
    policy_file: str
    source: Source
    target: tuple[str, ...]
    grants: tuple[str, ...]
    privacy_unit: str | None  # None: the policy declares every source row one unit
    unit_type: str
    max_rows_per_unit: int
    attributes: tuple[SyntheticAttribute, ...]
    edges: tuple[tuple[int, int], ...]
    rows: int | None  # None: as many as the noisy count of used source rows
    epsilon: Fraction
    cells: NoiseComponent  # each pair's (or lone attribute's) cells: its share of ε
    key: KeyRef
    key_table: tuple[str, ...]
    ledger: tuple[str, ...]
    budget: Budget
    description: str | None = None
    auto: bool = False
    utility: tuple[UtilityCheck, ...] = ()  # declared checks, gating `sqlanon utility`
    one_ways: NoiseComponent | None = None  # auto: each attribute alone
    selection_epsilon: Fraction = Fraction(0)  # auto: each step choosing the tree
    digest: str = field(default="", compare=False)

    delta = Fraction(0)  # pure epsilon: two-sided geometric noise

    @property
    def keys(self) -> tuple[KeyRef, ...]:
        return (self.key,)

    @property
    def target_name(self) -> str:
        return ".".join(self.target)

    @property
    def marginals(self) -> tuple[tuple[int, ...], ...]:
        """The measured marginals, by attribute positions: each edge (parent, child), then each
        attribute in no edge alone. Each row of a unit changes each by at most
        max_rows_per_unit (L1), so the ε is split evenly over them. With `auto`: each
        attribute alone (marginal number = attribute position), then every pair (i < j)."""
        n = len(self.attributes)
        if self.auto:
            pairs = tuple((i, j) for i in range(n) for j in range(i + 1, n))
            return tuple((i,) for i in range(n)) + pairs
        touched = {a for e in self.edges for a in e}
        alone = tuple((i,) for i in range(n) if i not in touched)
        return tuple(self.edges) + alone


@dataclass(frozen=True)
class PolicyRef:
    name: str
    file: str
    sha256: str


@dataclass(frozen=True)
class InputFile:
    """A file the plan was built from (policy, fragment, hierarchy), for the manifest."""

    path: str
    sha256: str
    role: str


@dataclass(frozen=True)
class Plan:
    policies: tuple[PolicyRef, ...]
    views: tuple[ViewPlan, ...]
    inputs: tuple[InputFile, ...]
    releases: tuple[ReleasePlan, ...] = ()
    budgets: tuple[Budget, ...] = ()
    synthetic: tuple[SyntheticPlan, ...] = ()

    @property
    def sources(self) -> tuple[tuple[str, ...], ...]:
        """The source relations the views and releases read (those a query names
        included), in a stable order."""
        sources = [v.source for v in self.views] + [r.source for r in self.releases]
        sources += [s.source for s in self.synthetic]
        return tuple(sorted({rel for s in sources for rel in source_reads(s)}))

    @property
    def key_tables(self) -> tuple[tuple[str, ...], ...]:
        """The key relations the views and releases read, in a stable order."""
        found = {v.key_table for v in self.views if v.key_table and v.keys}
        found |= {r.key_table for r in self.releases}
        found |= {s.key_table for s in self.synthetic}
        return tuple(sorted(found))

    @property
    def key_names(self) -> tuple[str, ...]:
        """Every key the views and releases read, by name."""
        names = {k.name for v in self.views for k in v.keys}
        names |= {k.name for r in self.releases for k in r.keys}
        return tuple(sorted(names | {k.name for s in self.synthetic for k in s.keys}))

    @property
    def ledgers(self) -> tuple[tuple[str, ...], ...]:
        found = {r.ledger for r in self.releases} | {s.ledger for s in self.synthetic}
        return tuple(sorted(found))


# -- JSON form -------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """Plain JSON values for plan data: stable, and exact for decimals."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError("not plan data: a non-finite float")
        return value
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and abs(value) < 10**15:
            return int(value)
        text = format(value.normalize(), "f")
        as_float = float(text)
        return as_float if format(Decimal(repr(as_float)).normalize(), "f") == text else text
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        if (
            value
            and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) for v in value)
            and not isinstance(value, list)
        ):
            return {k: to_jsonable(v) for k, v in value}
        return [to_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {
            f.name: to_jsonable(getattr(value, f.name)) for f in fields(value) if f.name != "digest"
        }
    raise TypeError(f"not plan data: {type(value).__name__}")


def digest_of(value: Any) -> str:
    """A digest of plan data. Plan values are frozen dataclasses, tuples, strings, numbers,
    decimals and dates, whose repr is complete and deterministic."""
    return hashlib.sha256(repr(value).encode("utf-8")).hexdigest()
