"""A synthetic table's plan → the SQL of one refresh (docs/synthetic.md).

Each refresh measures the plan's marginals — every cell of each, empty ones included (the
domains are public) — with two-sided geometric noise drawn from HMAC(noise key, message), the
message naming the refresh's nonce as a release's does (sqlanon/sql/releases.py); then draws
the rows attribute by attribute along the forest, each value from the noisy counts given its
parent's value, with uniforms from SHA-256("draw|" + nonce, row, block). Nothing is drawn
from an engine's RANDOM(), so every engine writes the same rows for one nonce.

The draws are post-processing of the noisy marginals: whatever their uniforms, the rows are
as private as the marginals, even to someone who can recompute the uniforms. So they are
unkeyed (one SHA-256 per row and four attributes, a third of an HMAC's cost: 1 M rows of
Adult's nine columns take 6 s in DuckDB); the noise, which must stay secret, is keyed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlanon.plan.model import SyntheticPlan, digest_of
from sqlanon.sql.dialect import Dialect
from sqlanon.sql.query import source_sql
from sqlanon.sql.releases import (
    MESSAGE_VERSION,
    _float,
    _message,
    _uniform,
    epoch_value,
    ledger_nonce,
    refresh_statements,
)
from sqlanon.sql.shapes import Sql
from sqlanon.sql.views import KEYS_ALIAS, SOURCE_ALIAS, Statement, key_row, qualifier
from sqlanon.transforms import REGISTRY, LowerContext
from sqlanon.transforms.common import (
    CHOICE_TAG,
    DRAW_TAG,
    NOISE_TAG,
    RANK_TAG,
    canonical,
    keyed_hex,
)

UNIFORMS_PER_HASH = 4  # 13 hex digits (52 bits) each of the 64
UNIT = "_sqlanon_unit"


def mechanism_digest(s: SyntheticPlan) -> str:
    """A digest of everything that shapes the noise and the draws (not the description or the
    grants): part of every message, so an edited table never reuses the old one's."""
    shaped = (
        s.policy,
        s.name,
        s.source,
        s.target,
        s.privacy_unit,
        s.unit_type,
        s.max_rows_per_unit,
        s.attributes,
        s.edges,
        s.rows,
        s.epsilon,
        s.cells,
        s.key,
    )
    auto = (s.auto, s.one_ways, s.selection_epsilon) if s.auto else ()  # declared: unchanged
    return digest_of(shaped + auto)[:32]


def output_columns(s: SyntheticPlan) -> list[tuple[str, str]]:
    """(name, logical type) of the synthetic table."""
    return [("epoch", "integer")] + [(a.name, a.step.output_type or "text") for a in s.attributes]


def marginals_query(
    s: SyntheticPlan, d: Dialect, epoch: Sql, nonce: Sql | None = None, noise: bool = True
) -> Sql:
    """The measured marginals as the refresh draws them for `nonce`, one row per cell:
    (marginal, i, j, noisy count); with noise=False the true counts of the rows used (for
    tests and utility reports, never for release)."""
    return synthetic_query(s, d, epoch, nonce, part="marginals", noise=noise)


def weights_query(s: SyntheticPlan, d: Dialect, epoch: Sql, nonce: Sql) -> Sql:
    """The marginals after the consistency step, one row per cell: (marginal, i, j, weight),
    each noisy count lowered by its marginal's shift, negatives as 0 (docs/synthetic.md
    #consistency). Post-processing of the noisy counts: what the draws read."""
    return synthetic_query(s, d, epoch, nonce, part="weights")


def tree_query(s: SyntheticPlan, d: Dialect, epoch: Sql, nonce: Sql) -> Sql:
    """`structure: auto`: the tree the refresh for `nonce` chooses, one row: for each step
    k ≥ 1, the attribute joining it (_sqlanon_c<k>), the step of its parent (_sqlanon_q<k>),
    the pair's marginal (_sqlanon_m<k>); and the step at which attribute i joined
    (_sqlanon_at<i>). Post-processing of the private choice: safe to show."""
    return synthetic_query(s, d, epoch, nonce, part="tree")


def tree_pairs(row: Sequence[Any], n: int) -> list[frozenset[int]]:
    """The pairs (attribute positions) of tree_query's row for n attributes, in the order
    they joined the tree: the row holds the step each attribute joined at, then per step
    k ≥ 1 its marginal, side, parent step and the attribute it added."""
    steps = [row[n + 4 * (k - 1) : n + 4 * k] for k in range(1, n)]
    added = [0] + [int(c) for *_, c in steps]  # the attribute added at each step
    return [frozenset((added[int(q)], added[k + 1])) for k, (_, _, q, _) in enumerate(steps)]


def used_rows_query(s: SyntheticPlan, d: Dialect) -> Sql:
    """The source rows with every attribute in its domain, each attribute as its domain
    position: what `sqlanon utility` compares the table with. Every row, a unit's beyond
    max_rows_per_unit included (the truth, as a release's utility compares with the plain
    aggregate), and no key is read."""
    return synthetic_query(s, d, d.number(0), d.string(""), part="used", noise=False)


def synthetic_query(
    s: SyntheticPlan,
    d: Dialect,
    epoch: Sql,
    nonce: Sql | None = None,
    part: str = "rows",
    noise: bool = True,
) -> Sql:
    """The SELECT drawing one epoch's rows for `nonce` (by default the nonce the ledger issued
    to this refresh, whose row must be written first, in the same transaction). `part`
    stops it early: "marginals" (marginals_query), "weights" (weights_query), "used"
    (used_rows_query), "tree" (tree_query), "choices" (auto: each step's candidate pairs, one
    row per step and pair: step, marginal, score numerator and denominator, key = scaled
    score + Gumbel noise; for the tests of the mechanism, never released)."""
    if nonce is None:
        nonce = ledger_nonce(s, d) if noise else d.string("")
    extra = ((epoch, "_sqlanon_epoch"), (nonce, "_sqlanon_nonce"))
    key_query, pad_names = key_row([s.key], s.key_table, d, extra=extra)
    pads = pad_names[s.key]
    src = qualifier(d, SOURCE_ALIAS)
    n = len(s.attributes)
    texts = [d.ident(f"_sqlanon_t{i}") for i in range(n)]
    attrs = [d.ident(f"_sqlanon_a{i}") for i in range(n)]
    digest = mechanism_digest(s)

    def ctx_for(alias: str) -> LowerContext:
        col = qualifier(d, alias)
        return LowerContext(d, {s.key: (col(pads[0]), col(pads[1]))})

    # rows: each attribute's canonical text; indexed: its position in the domain (else NULL)
    row_ctx = ctx_for(KEYS_ALIAS)
    row_items: list[Sql] = []
    row_names: list[Sql] = []
    filters: list[Sql] = []
    if s.privacy_unit is not None:
        row_items.append(src(s.privacy_unit))
        row_names.append(d.ident(UNIT))
        filters.append(d.prim("not_null", src(s.privacy_unit)))
    index_items: list[Sql] = [d.ident(UNIT)] if s.privacy_unit is not None else []
    index_names: list[Sql] = list(index_items)
    for i, attribute in enumerate(s.attributes):
        step = attribute.step
        value = REGISTRY[step.transform].lower(row_ctx, src(step.sources[0]), step)
        row_items.append(canonical(row_ctx, value, step.output_type))
        row_names.append(texts[i])
        parts: list[Sql] = []
        for pos, v in enumerate(attribute.domain):
            parts += [d.prim("eq", texts[i], d.string(v)), d.number(pos)]
        parts.append(d.prim("null"))  # outside the domain (NULL too): the row is not used
        index_items.append(d.noted(d.prim("case", parts), f"{attribute.name}: its domain position"))
        index_names.append(attrs[i])
    in_domain = [d.prim("not_null", x) for x in attrs]

    # with a privacy unit: each unit's rows in the order of a keyed hash of its values
    r = qualifier(d, "_sqlanon_r")
    rank_text = _message(
        d,
        [canonical(row_ctx, r(UNIT), s.unit_type)]
        + [d.prim("canonical_text", r(f"_sqlanon_a{i}"), type="integer") for i in range(n)],
    )
    rank = keyed_hex(ctx_for(KEYS_ALIAS), rank_text, s.key, RANK_TAG)

    # the marginals: (id, size of the i side, of the j side: 1 for an attribute alone); each
    # used row counted once in each, at (its i value, its j value or 0)
    marginal_rows: list[Sql] = []
    u, mm = qualifier(d, "_sqlanon_u"), qualifier(d, "_sqlanon_mm")
    pick_i: list[Sql] = []
    pick_j: list[Sql] = []
    for m, x in enumerate(s.marginals):
        sizes = [len(s.attributes[a].domain) for a in x] + [1]
        marginal_rows += [d.number(m), d.number(sizes[0]), d.number(sizes[1])]
        which = d.prim("eq", mm("_sqlanon_m"), d.number(m))
        pick_i += [which, u(f"_sqlanon_a{x[0]}")]
        pick_j += [which, u(f"_sqlanon_a{x[1]}") if len(x) == 2 else d.number(0)]
    cell_i, cell_j = d.prim("case", pick_i), d.prim("case", pick_j)

    # hashed: each cell's true count and its noise hash
    e, t, k = qualifier(d, "_sqlanon_e"), qualifier(d, "_sqlanon_t"), qualifier(d, KEYS_ALIAS)
    head = ["synthetic", MESSAGE_VERSION, s.policy, s.name, s.target_name, digest]
    cell_message = _message(
        d,
        [
            *head,
            k("_sqlanon_nonce"),
            d.prim("canonical_text", k("_sqlanon_epoch"), type="integer"),
            *(
                d.prim("canonical_text", e(c), type="integer")
                for c in ("_sqlanon_m", "_sqlanon_i", "_sqlanon_j")
            ),
        ],
    )
    hashed_items = [
        e("_sqlanon_m"),
        e("_sqlanon_i"),
        e("_sqlanon_j"),
        d.prim("coalesce", [t("_sqlanon_c"), d.number(0)]),
        keyed_hex(ctx_for(KEYS_ALIAS), cell_message, s.key, NOISE_TAG),
    ]
    hashed_names = [d.ident(x) for x in ("_sqlanon_m", "_sqlanon_i", "_sqlanon_j", "_sqlanon_c")]
    hashed_names.append(d.ident("_sqlanon_x"))

    # noisy: the count plus Z = G1 - G2, Gi = floor(ln ui / ln p)
    h = qualifier(d, "_sqlanon_h")
    ln_p = d.noted(_float(d, s.cells.ln_p), "ln p = -epsilon / sensitivity")
    if s.one_ways is not None:  # auto: the attributes alone (marginals 0 … n-1) have their own
        alone = d.noted(_float(d, s.one_ways.ln_p), "each attribute alone")
        ln_p = d.prim("case", [d.prim("lt", h("_sqlanon_m"), d.number(n)), alone, ln_p])
    draws_ = [
        d.prim("floor", d.prim("div", d.prim("ln", _uniform(d, h("_sqlanon_x"), at)), ln_p))
        for at in (1, 14)
    ]
    noisy = d.prim(
        "add", h("_sqlanon_c"), d.prim("cast", d.prim("sub", draws_[0], draws_[1]), to="integer")
    )
    if not noise:
        noisy = h("_sqlanon_c")

    auto = _auto_parts(s, d, head, ctx_for(KEYS_ALIAS)) if s.auto else None

    # draws: each attribute given its parent (the marginal's i side), or a root alone
    parent_of = {child: (m, parent) for m, (parent, child) in enumerate(s.edges)}
    own = {marginal[0]: m for m, marginal in enumerate(s.marginals) if len(marginal) == 1}
    order = [a for a in range(n) if a not in parent_of] + [child for _, child in s.edges]
    starts: dict[int, int] = {}  # a root's first edge: the root is its i side
    for m, (parent, _) in enumerate(s.edges):
        starts.setdefault(parent, m)
    step_rows: list[Sql] = []  # (attribute, its marginal, 1 for a root, f = 0: given side i)
    for a in order:
        m = parent_of[a][0] if a in parent_of else own[a] if a in own else starts[a]
        step_rows += [d.number(a), d.number(m), d.number(0 if a in parent_of else 1), d.number(0)]

    # ids: each row to draw and its message (computed once), hashed per block of columns
    o, g = qualifier(d, "_sqlanon_o"), qualifier(d, "_sqlanon_g")
    message = _message(
        d,
        [
            *head,
            k("_sqlanon_nonce"),
            d.prim("canonical_text", k("_sqlanon_epoch"), type="integer"),
            d.prim("canonical_text", o("_sqlanon_id"), type="integer"),
        ],
    )
    id_items = [o("_sqlanon_id"), message, k("_sqlanon_epoch")]
    id_names = [d.ident(x) for x in ("_sqlanon_id", "_sqlanon_msg", "_sqlanon_epoch")]
    y = qualifier(d, "_sqlanon_y")
    hash_items: list[Sql] = [y("_sqlanon_id"), y("_sqlanon_epoch")]
    hash_names: list[Sql] = [d.ident("_sqlanon_id"), d.ident("_sqlanon_epoch")]
    for block in range((n + UNIFORMS_PER_HASH - 1) // UNIFORMS_PER_HASH):
        tagged = d.prim(
            "concat",
            [d.string(f"{DRAW_TAG}|"), y("_sqlanon_msg"), d.string(f"|{len(str(block))}:{block}")],
        )
        hash_items.append(d.prim("sha256_hex", d.prim("utf8", tagged)))
        hash_names.append(d.ident(f"_sqlanon_u{block}"))
    # uniforms: each attribute's 52 bits of its block's hash, as an integer, computed once
    z = qualifier(d, "_sqlanon_z")
    uniform_items: list[Sql] = [z("_sqlanon_id"), z("_sqlanon_epoch")]
    uniform_names: list[Sql] = [d.ident("_sqlanon_id"), d.ident("_sqlanon_epoch")]
    for a in range(n):
        block, at = divmod(a, UNIFORMS_PER_HASH)
        uniform_items.append(d.prim("hex_int", z(f"_sqlanon_u{block}"), start=1 + 13 * at))
        uniform_names.append(d.ident(f"_sqlanon_r{a}"))
    draw_uniforms = [g(f"_sqlanon_r{a}") for a in order]
    draw_given = [
        g(f"_sqlanon_a{parent_of[a][1]}") if a in parent_of else d.number(0) for a in order
    ]
    drawn = [attrs[a] for a in order]
    draw_steps = [d.number(a) for a in order]
    if s.auto:  # step k draws the k-th attribute of the chosen tree, given its parent's step
        drawn = [d.ident(f"_sqlanon_v{at}") for at in range(n)]
        # the root (the first attribute) from the row totals of the first pair chosen, which
        # always holds it as its first side: step -2m for pair m
        first = d.prim("mul", d.number(-1), g("_sqlanon_s1")) if n > 1 else d.number(0)
        draw_steps = [first] + [g(f"_sqlanon_s{at}") for at in range(1, n)]
        # (s, marginal, root, f): every way a marginal may draw
        step_rows = []
        for m, x in enumerate(s.marginals):
            if len(x) == 2 and x[0] == 0:
                step_rows += [d.number(-2 * m), d.number(m), d.number(1), d.number(0)]
            if len(x) == 2:
                step_rows += [d.number(2 * m), d.number(m), d.number(0), d.number(0)]
                step_rows += [d.number(2 * m + 1), d.number(m), d.number(0), d.number(1)]
        draw_uniforms = [g(f"_sqlanon_r{at}") for at in range(n)]
        draw_given = [d.number(0), g("_sqlanon_v0")][: min(n, 2)]
        for at in range(2, n):  # the value drawn at the step its parent joined the tree
            parts = []
            for q in range(at):
                parts += [d.prim("eq", g(f"_sqlanon_q{at}"), d.number(q)), g(f"_sqlanon_v{q}")]
            draw_given.append(d.prim("case", parts))

    outputs: list[Sql] = [g("_sqlanon_epoch")]
    for i, attribute in enumerate(s.attributes):
        parts = []
        for pos, v in enumerate(attribute.domain):
            parts += [d.prim("eq", g(f"_sqlanon_a{i}"), d.number(pos)), d.string(v)]
        value = d.prim("case", [*parts, d.prim("null")])
        out = attribute.step.output_type or "text"
        outputs.append(value if out == "text" else d.prim("cast", value, to=out))
    output_names = [d.ident(name) for name, _ in output_columns(s)]
    return d.statement(
        "dp_synthetic_query",
        source_sql(s.source, d),
        key_query[0],
        row_items,
        row_names,
        filters,
        index_items,
        index_names,
        in_domain,
        rank,
        d.number(s.max_rows_per_unit),
        attrs,
        marginal_rows,
        cell_i,
        cell_j,
        hashed_items,
        hashed_names,
        noisy,
        step_rows,
        [] if s.rows is None else [d.number(s.rows)],
        d.statement("row_ids", d.ident("_sqlanon_wanted")),
        id_items,
        id_names,
        hash_items,
        hash_names,
        uniform_items,
        uniform_names,
        drawn,
        draw_steps,
        draw_given,
        draw_uniforms,
        outputs,
        output_names,
        auto[1] if auto else [],
        auto[2] if auto else d.number(0),
        has_unit=s.privacy_unit is not None and part != "used",  # utility: every row
        part=part,
        auto_n=auto[0] if auto else 0,
    )


def _auto_parts(
    s: SyntheticPlan, d: Dialect, head: list[str], ctx: LowerContext
) -> tuple[int, list[Sql], Sql]:
    """`structure: auto` (docs/synthetic.md#auto): the pairs (marginal, attribute a, b), and
    each candidate's key at each step of choosing the tree, its score scaled by ε / 2Δ plus
    Gumbel noise (-ln -ln u, u from a keyed hash): the largest key wins, which is the
    exponential mechanism. A pair's score, the L1 distance of its true counts from the
    product of the noisy one-ways, moves by at most max_rows_per_unit (Δ) when one unit's
    rows come or go: the noisy one-ways are fixed, only the true counts change."""
    n = len(s.attributes)
    pairs: list[Sql] = []
    for m, x in enumerate(s.marginals):
        if len(x) == 2:
            pairs += [d.number(m), d.number(x[0]), d.number(x[1])]
    e, st, k = qualifier(d, "_sqlanon_e"), qualifier(d, "_sqlanon_st"), qualifier(d, KEYS_ALIAS)
    message = _message(
        d,
        [
            *head,
            k("_sqlanon_nonce"),
            d.prim("canonical_text", k("_sqlanon_epoch"), type="integer"),
            d.prim("canonical_text", st("_sqlanon_v"), type="integer"),
            d.prim("canonical_text", e("_sqlanon_m"), type="integer"),
        ],
    )
    u = _uniform(d, keyed_hex(ctx, message, s.key, CHOICE_TAG), 1)
    score = d.prim(
        "div",
        d.prim("cast", e("_sqlanon_num"), to="float"),
        d.prim("cast", e("_sqlanon_den"), to="float"),
    )
    scale = s.selection_epsilon / (2 * s.max_rows_per_unit)
    scaled = d.prim("mul", score, d.noted(_float(d, float(scale)), "epsilon / (2 x sensitivity)"))
    gumbel = d.prim("ln", d.prim("sub", d.number(0), d.prim("ln", u)))
    return n, pairs, d.prim("sub", scaled, gumbel)


def synthetic_statements(
    s: SyntheticPlan, d: Dialect, epoch: Sql | None = None, allow_overspend: bool = False
) -> list[Statement]:
    """One refresh, as a release's: the ledger row (budget checked, nonce issued), then the
    epoch's rows replaced by rows drawn for that nonce, in one transaction."""
    if epoch is None:
        epoch = epoch_value(d)
    query = synthetic_query(s, d, epoch)
    return setup_statements(s, d) + refresh_statements(
        s, d, query, output_columns(s), epoch, allow_overspend
    )


def setup_statements(s: SyntheticPlan, d: Dialect) -> list[Statement]:
    """What a session needs before it runs this table's queries: with `structure: auto`, a
    larger analyzer budget where the dialect asks for one (Spark: dialect.yml)."""
    if not s.auto or not d.features.analyzer_iterations:
        return []
    n = d.number(d.features.analyzer_iterations)
    return [Statement(d.statement("analyzer_iterations", n).text)]
