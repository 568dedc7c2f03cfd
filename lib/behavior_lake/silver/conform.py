"""Bronze rows (with person_id) -> typed silver rows, each with a `_status`.

`_status` is one of: silver (kept), reject (reason code), duplicate, consent_dropped,
so that bronze rows = silver + rejects + duplicates + consent-dropped. Everything is
built from Spark expressions and window functions (no Python UDF).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from behavior_lake.bronze.arrival import (
    arrival_source,
    arrival_ts,
    clock_skew_seconds,
    skew_corrected_ts,
)
from behavior_lake.bronze.drift import compatible_sql, taxonomy_type_sql
from behavior_lake.bronze.parse import PROPS as PV  # properties VARIANT, dropped after conform
from behavior_lake.bronze.parse import V, properties_variant
from behavior_lake.config import SilverSettings
from behavior_lake.contracts.codes import RejectReason, values
from behavior_lake.contracts.taxonomy import SPARK_TYPES as _SPARK_TYPES
from behavior_lake.contracts.taxonomy import Taxonomy, property_types

SILVER_REASONS = values(RejectReason)
PLATFORM_BY_LIBRARY = {
    "analytics.js": "web",
    "analytics-ios": "ios",
    "analytics-android": "android",
}


def _get(path: str, typ: str, v: Column | None = None) -> Column:
    return F.try_variant_get(F.col(V) if v is None else v, path, typ)


_CONSENT_AT = "struct<consent:struct<categoryPreferences:struct<Analytics:boolean>>>"
NARROW = "_narrow"  # the few raw-line fields the window step needs, dropped after conform


def _narrow_parse(raw_line: Column) -> Column:
    """The raw line read with a schema of only what the window step needs (the consent
    booleans and `originalTimestamp`), so the JSON parser skips the rest of the line
    instead of building the whole document (the typed projection parses it fully, once,
    later). A value of another JSON type reads as null (partial results, Spark's
    default), like a missing one."""
    return F.from_json(
        raw_line,
        f"struct<originalTimestamp:string,context:{_CONSENT_AT},traits:{_CONSENT_AT}>",
    )


def _consent_of(parsed: Column) -> Column:
    """The event's own analytics-consent signal (boolean, else null):
    context.consent.categoryPreferences.Analytics, else the same under traits."""
    return F.coalesce(
        *[parsed[k]["consent"]["categoryPreferences"]["Analytics"] for k in ("context", "traits")]
    )


def _consent_signal(raw_line: Column) -> Column:
    return _consent_of(_narrow_parse(raw_line))


def with_typed_fields(df: DataFrame, taxonomy: Taxonomy, kept_context: list[str]) -> DataFrame:
    """Parse raw_line again and add the typed silver columns (no rows dropped)."""
    ptypes = property_types(taxonomy)
    # The properties object is looked up once; every property below is one key away
    # from it instead of two from the root.
    parsed = df.withColumn(V, F.try_parse_json(F.col("raw_line"))).withColumn(
        PV, properties_variant()
    )
    # Built as SQL text: one JVM call instead of thousands of Column round-trips.
    typed = parsed.selectExpr(
        "*",
        *[
            taxonomy_type_sql(f"schema_of_variant(try_variant_get({PV}, '$.{p}', 'variant'))")
            + f" AS _pt_{p}"
            for p in ptypes
        ],
    )
    fields = []
    for p, t in ptypes.items():
        path = f"'$.{p}'"
        if t in ("object", "array"):
            get = f"to_json(try_variant_get({PV}, {path}, 'variant'))"
        else:
            get = f"try_variant_get({PV}, {path}, '{_SPARK_TYPES[t].simpleString()}')"
        ok = compatible_sql(t, f"_pt_{p}")
        fields.append(f"'{p}', CASE WHEN _pt_{p} IS NOT NULL AND {ok} THEN {get} END")
    props_struct = F.expr("named_struct(" + ", ".join(fields) + ")") if fields else F.struct()
    declared = F.create_map(
        *[
            x
            for e in taxonomy.events.values()
            for x in (F.lit(e.name), F.array(*[F.lit(k) for k in sorted(e.properties)]))
        ]
    )
    # Objects and arrays become their JSON text, scalars their text (a cast, no JSON
    # round trip).
    all_props = _get("$", "map<string,string>", F.col(PV))
    known = F.coalesce(F.element_at(declared, F.col("event")), F.array().cast("array<string>"))
    extra = F.map_filter(
        F.coalesce(all_props, F.create_map().cast("map<string,string>")),
        lambda k, _v: ~F.array_contains(known, k),
    )
    library = _get("$.context.library.name", "string")
    os_name = F.lower(_get("$.context.os.name", "string"))
    platform = F.coalesce(
        F.element_at(
            F.create_map(*[F.lit(x) for kv in PLATFORM_BY_LIBRARY.items() for x in kv]), library
        ),
        F.when(os_name.isin("ios", "android"), os_name),
        F.when(_get("$.context.device.type", "string") == "desktop", F.lit("web")),
        F.lit("unknown"),
    )
    context = (
        F.map_filter(
            F.create_map(
                *[
                    x
                    for path in kept_context
                    for x in (F.lit(path), _get(f"$.context.{path}", "string"))
                ]
            ),
            lambda _k, v: v.isNotNull(),
        )
        if kept_context
        else F.create_map().cast("map<string,string>")
    )
    revenue = (
        F.when(
            F.col("_pt_revenue").isin("integer", "number"),
            _get("$.revenue", "decimal(18,2)", F.col(PV)),
        )
        if "revenue" in ptypes
        else F.lit(None).cast("decimal(18,2)")
    )
    return typed.select(
        "*",
        props_struct.alias("properties"),
        extra.alias("properties_extra"),
        platform.alias("platform"),
        F.coalesce(
            F.when(F.col("event_type") == "page", _get("$.path", "string", F.col(PV))),
            _get("$.context.page.path", "string"),
        ).alias("page_path"),
        _get("$.context.userAgent", "string").alias("_user_agent"),
        context.alias("context"),
        revenue.alias("revenue"),
        _get("$.currency", "string", F.col(PV)).alias("currency"),
    )


def _property_checks(taxonomy: Taxonomy) -> list[tuple[str, str, str, str]]:
    """(condition SQL, reason code, property, policy) per declared property rule."""
    out = []
    for e in taxonomy.events.values():
        name = e.name.replace("'", "''")
        for p in sorted(e.required):
            cond = f"event = '{name}' AND _pt_{p} IS NULL"
            out.append((cond, "missing_required_property", p, e.policy(p)[0]))
        for p, t in sorted(e.properties.items()):
            cond = f"event = '{name}' AND NOT {compatible_sql(t, f'_pt_{p}')}"
            out.append((cond, "invalid_property_type", f"{p}: expected {t}", e.policy(p)[1]))
    return out


def _property_violation(taxonomy: Taxonomy) -> tuple[Column, Column]:
    """(reason, detail) of the first property rule with policy `reject` that fails."""
    rules = [r for r in _property_checks(taxonomy) if r[3] == "reject"]
    if not rules:
        return F.lit(None).cast("string"), F.lit(None).cast("string")
    reasons = " ".join(f"WHEN {c} THEN '{code}'" for c, code, _p, _ in rules)
    details = " ".join(f"WHEN {c} THEN '{p}'" for c, _code, p, _ in rules)
    return F.expr(f"CASE {reasons} END"), F.expr(f"CASE {details} END")


def property_findings(taxonomy: Taxonomy) -> Column:
    """`dq_issues`: every property rule with policy `flag` that fails, as
    '<reason>:<property>' (empty array when none)."""
    rules = [r for r in _property_checks(taxonomy) if r[3] == "flag"]
    if not rules:
        return F.array().cast("array<string>")
    items = ", ".join(
        f"CASE WHEN {c} THEN '{code}:{p.split(':')[0]}' END" for c, code, p, _ in rules
    )
    return F.expr(f"filter(array({items}), x -> x IS NOT NULL)")


def with_arrival(df: DataFrame) -> DataFrame:
    """`arrival_ts`/`arrival_source` (bronze.arrival: receivedAt, else the landing hour,
    else the ingestion, never later than either), `_received` (= arrival_ts, what
    lateness, dedup look-back and the future check measure from), and the Segment
    clock-skew correction of `event_ts` where receivedAt, sentAt and originalTimestamp
    are all known (`clock_skew_seconds`: device minus server clock)."""
    rec, src, ing = F.col("received_at"), F.col("source_file"), F.col("ingested_at")
    arrival = arrival_ts(rec, src, ing)
    trusted_rec = F.when(rec <= arrival, rec)  # a receivedAt past the bounds is not used
    df = df.withColumn(NARROW, _narrow_parse(F.col("raw_line")))
    orig = F.col(NARROW)["originalTimestamp"].try_cast("timestamp")
    corrected = skew_corrected_ts(trusted_rec, F.col("sent_at"), orig)
    return df.withColumns(
        {
            "arrival_ts": arrival,
            "arrival_source": arrival_source(rec, src, ing),
            "_received": arrival,
            "clock_skew_seconds": F.when(
                corrected.isNotNull(), clock_skew_seconds(trusted_rec, F.col("sent_at"))
            ),
            "event_ts": F.coalesce(corrected, F.col("event_ts")),
        }
    )


def with_windows(df: DataFrame, s: SilverSettings) -> DataFrame:
    """Everything that needs other rows, computed on the narrow bronze rows.

    Adds `_copy` (1 = first copy of a message_id), `_first_received`, `_received`,
    `_future`, `is_ts_corrected` (and corrects `event_ts` under the `correct` policy),
    `_per_hour` (the person's first copies in the event's clock hour) and `_consent`
    (the person's latest consent signal at or before the event).

    Cost: one shuffle by message_id, one by person_id. The two per-person windows
    share it, and the last one leaves rows sorted by (person_id, event_ts,
    message_id) -- the order sessionization needs, so it adds no shuffle or sort.
    """
    df = with_arrival(df)
    first = Window.partitionBy("message_id").orderBy(
        "_received", "ingested_at", "source_file", "raw_line"
    )
    future = F.col("event_ts") > F.col("_received") + F.expr(
        f"INTERVAL {s.allowed_clock_skew_minutes} MINUTES"
    )
    fix = s.future_timestamp_policy == "correct"
    df = df.withColumns(
        {
            "_copy": F.row_number().over(first),
            "_first_received": F.min("_received").over(Window.partitionBy("message_id")),
            "is_ts_corrected": future & F.lit(fix),
            "event_ts": F.when(future & F.lit(fix), F.col("_received")).otherwise(
                F.col("event_ts")
            ),
            "_future": future,
        }
    )
    is_dup = F.col("_copy") > 1
    # Hash by person alone: both windows below are satisfied by it (no second shuffle).
    df = df.repartition("person_id")
    hour = Window.partitionBy("person_id", F.date_trunc("hour", F.col("event_ts")))
    df = df.withColumns({"_per_hour": F.sum(F.when(~is_dup, 1).otherwise(0)).over(hour)})
    # Consent as of each event: the person's latest signal at or before it.
    signals = (
        Window.partitionBy("person_id")
        .orderBy("event_ts", "message_id")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    signal = _consent_of(F.col(NARROW))
    state = F.last(F.when(~is_dup, signal), ignorenulls=True).over(signals)
    return df.withColumns({"_consent": F.coalesce(state, F.lit(s.consent_when_unknown == "grant"))})


def with_status(df: DataFrame, taxonomy: Taxonomy, s: SilverSettings) -> DataFrame:
    """Dedup, time sanity, taxonomy validation, bots and consent -> `_status`, `reason`.

    Needs the columns of `with_windows` and `with_typed_fields`; a projection only
    (plus a broadcast join with the small taxonomy frame), so row order is kept."""
    events = taxonomy.events_frame(df.sparkSession).select(
        "event", F.col("event_name").alias("_tax_name"), "category", "schema_version"
    )
    df = df.join(F.broadcast(events), on="event", how="left")
    fix = s.future_timestamp_policy == "correct"
    is_dup = F.col("_copy") > 1
    beyond = (F.col("_received") - F.col("_first_received")) > F.expr(
        f"INTERVAL {s.dedup_lookback_days} DAYS"
    )
    too_late = (F.col("_received") - F.col("event_ts")) > F.expr(
        f"INTERVAL {s.late_allowed_days} DAYS"
    )
    taxable = F.col("event_type").isin("track", "page", "screen")
    prop_reason, prop_detail = _property_violation(taxonomy)
    bot_ua = F.coalesce(F.col("_user_agent").rlike(s.bots.user_agent_pattern), F.lit(False))
    rules: list[tuple[Column, Column, Column]] = [
        (F.col("person_id").isNull(), F.lit("unattributable"), F.lit("only placeholder ids")),
        (
            beyond,
            F.lit("duplicate_beyond_lookback"),
            F.concat(F.lit("first copy received "), F.col("_first_received").cast("string")),
        ),
        (
            F.col("_future") & F.lit(not fix),
            F.lit("future_timestamp"),
            F.col("event_ts").cast("string"),
        ),
        (
            too_late,
            F.lit("too_late"),
            F.concat(
                F.lit("arrived "),
                F.col("_received").cast("string"),
                F.lit(" ("),
                F.col("arrival_source"),
                F.lit(f") > {s.late_allowed_days} days after its timestamp"),
            ),
        ),
        (taxable & F.col("_tax_name").isNull(), F.lit("unknown_event"), F.col("event")),
        (taxable & prop_reason.isNotNull(), prop_reason, prop_detail),
        # The user agent itself never reaches silver (data minimization).
        (bot_ua, F.lit("bot_user_agent"), F.lit("user agent matches silver.bots pattern")),
        (
            F.col("_per_hour") > s.bots.max_events_per_hour,
            F.lit("bot_rate_limit"),
            F.concat(F.col("_per_hour").cast("string"), F.lit(" events in one hour")),
        ),
    ]
    evaluated = ~is_dup | beyond
    reason = F.when(F.lit(False), F.lit(None).cast("string"))
    detail = F.when(F.lit(False), F.lit(None).cast("string"))
    for cond, code, text in rules:
        c = evaluated & F.coalesce(cond, F.lit(False))
        reason, detail = reason.when(c, code), detail.when(c, text)

    df = df.withColumns({"reason": reason, "detail": detail})
    status = (
        F.when(is_dup & ~beyond, F.lit("duplicate"))
        .when(F.col("reason").isNotNull(), F.lit("reject"))
        .when(~F.col("_consent"), F.lit("consent_dropped"))
        .otherwise(F.lit("silver"))
    )
    snake = F.regexp_replace(F.lower(F.trim(F.col("event"))), r"[^a-z0-9]+", "_")
    return df.withColumns(
        {
            "dq_issues": F.when(taxable, property_findings(taxonomy)).otherwise(
                F.array().cast("array<string>")
            ),
            "_status": status,
            "event_name": F.when(
                taxable, F.coalesce(F.col("_tax_name"), F.regexp_replace(snake, r"^_|_$", ""))
            ).otherwise(F.col("event_type")),
            "category": F.when(taxable, F.col("category")).otherwise(F.lit("identity")),
            "event_date": F.to_date("event_ts"),
        }
    )


def conform(
    df: DataFrame, taxonomy: Taxonomy, s: SilverSettings, kept_context: list[str]
) -> DataFrame:
    """Bronze rows with person_id -> typed rows with `_status` (windows first, on the
    narrow rows; then the wide typed projection and the rules, which keep the order)."""
    return (
        df.transform(lambda d: with_windows(d, s))
        .transform(lambda d: with_typed_fields(d, taxonomy, kept_context))
        .transform(lambda d: with_status(d, taxonomy, s))
        .drop(V, PV, NARROW)
    )
