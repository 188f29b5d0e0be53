#!/usr/bin/env python3
"""Runs every ClickHouse query of the Grafana dashboard dashboards/trade.json
against a ClickHouse server over HTTP, the way Grafana and the
grafana-clickhouse-datasource plugin (v4) would send it: template variables
and `$__conditionalAll` resolved as the plugin does in the browser, then the
plugin's server-side macros (`$__timeFilter`, `$__timeInterval`,
`$__interval_s`, `$__fromTime`, `$__toTime`).

    python3 deploy/compose/grafana/check_sql.py [database]

The database comes from the argument, else CH_DATABASE, else `tradewind`;
the server from CH_URL (default http://127.0.0.1:8123), CH_USER (default
`default`) and CH_PASSWORD (default empty). Standard library only.

The time range is the data's whole span (first to last window, so every
row), and `$__interval_s` is what Grafana would pick for it from each
panel's maxDataPoints and minimum interval. Each variable query must return
values; each panel query then runs three times:

  all    every variable on "All" (what Grafana sends by default: each
         `$__conditionalAll` becomes 1=1)
  every  every variable set to each of its values (the IN lists); the
         result must equal the "all" run, so the filters match the values
         the variables offer
  one    every variable set to its first value only

ClickHouse 18.16 has no toStartOfInterval, so for an old server (before
20.x) `$__timeInterval(col)` is replaced by the equivalent
toDateTime(intDiv(toUInt32(toDateTime(col)), N) * N); on a newer server the
plugin's own expansion is used. Exit status 1, naming the panel, on the
first failure.
"""
import base64
import json
import os
import pathlib
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

DASHBOARD = pathlib.Path(__file__).resolve().parent / "dashboards" / "trade.json"
PLUGIN = "grafana-clickhouse-datasource"


# ---- what the plugin does in the browser --------------------------------

def macro_args(sql, open_paren):
    """Arguments of the macro whose '(' is at `open_paren`, split on commas
    at depth one (as the plugin's getMacroArgs does), and the index after ')'."""
    depth, start, args = 0, open_paren + 1, []
    for i in range(open_paren, len(sql)):
        c = sql[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i])
                return args, i + 1
        elif c == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
    raise ValueError(f"unbalanced parentheses after {sql[max(0, open_paren - 20):open_paren + 1]!r}")


def conditional_all(sql, state):
    """$__conditionalAll(condition, $var): 1=1 when `var` is on All, else the condition."""
    macro = "$__conditionalAll"
    while (i := sql.rfind(macro + "(")) != -1:
        args, end = macro_args(sql, i + len(macro))
        if len(args) != 2:
            raise ValueError(f"$__conditionalAll takes 2 arguments, got {len(args)}: {sql[i:end]}")
        m = re.fullmatch(r"\s*\$(?:\{(\w+)\}|(\w+))\s*", args[1])
        if not m:
            raise ValueError(f"$__conditionalAll's second argument must be $var: {args[1]!r}")
        name = m.group(1) or m.group(2)
        if name not in state:
            raise ValueError(f"unknown variable ${name}")
        sql = sql[:i] + ("1=1" if state[name]["all"] else args[0]) + sql[end:]
    return sql


def singlequote(values):
    return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)


def template_vars(sql, state):
    """${var:singlequote}, ${var} and $var (the plugin's default format:
    'a','b' for several values, the bare value for one). `$__*` is left for
    the macros. Grafana expands All to every value when there is no custom
    all value."""
    def sub(m):
        name, fmt = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), None)
        if name.startswith("__"):
            return m.group(0)
        if name not in state:
            raise ValueError(f"unknown variable ${name}")
        values = state[name]["values"]
        if fmt == "singlequote":
            return singlequote(values)
        if fmt is not None:
            raise ValueError(f"format :{fmt} not handled by this check")
        return singlequote(values) if len(values) > 1 else values[0]
    return re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)", sub, sql)


# ---- what the plugin does on the server (pkg/macros) ----------------------

def plugin_time_interval(col, n):
    return f"toStartOfInterval(toDateTime({col}), INTERVAL {n} second)"


def old_server_time_interval(col, n):
    return f"toDateTime(intDiv(toUInt32(toDateTime({col})), {n}) * {n})"


def server_macros(sql, t_from, t_to, interval_s, time_interval):
    def one_arg(name, fn):
        nonlocal sql
        macro = "$__" + name + "("
        while (i := sql.find(macro)) != -1:
            args, end = macro_args(sql, i + len(macro) - 1)
            if len(args) != 1:
                raise ValueError(f"$__{name} takes 1 argument: {sql[i:end]}")
            sql = sql[:i] + fn(args[0].strip()) + sql[end:]

    one_arg("timeFilter", lambda c: f"{c} >= toDateTime({t_from}) AND {c} <= toDateTime({t_to})")
    one_arg("timeInterval", lambda c: time_interval(c, interval_s))
    sql = re.sub(r"\$__interval_s\b", str(interval_s), sql)
    sql = re.sub(r"\$__fromTime\b", f"toDateTime({t_from})", sql)
    sql = re.sub(r"\$__toTime\b", f"toDateTime({t_to})", sql)
    return sql


def render(sql, state, t_from, t_to, interval_s, time_interval=plugin_time_interval):
    """The SQL ClickHouse receives for `sql` with variables in `state`
    ({name: {"all": bool, "values": [...]}})."""
    sql = conditional_all(sql, state)
    sql = template_vars(sql, state)
    sql = server_macros(sql, t_from, t_to, interval_s, time_interval)
    if "$" in sql:
        raise ValueError(f"unresolved macro or variable in: {sql}")
    return sql


# ---- Grafana's interval: range / maxDataPoints, rounded, at least the panel's minimum

_ROUND_MS = [  # (below this raw interval, use this one), as Grafana's rangeutil.roundInterval
    (1500, 1000), (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000),
    (25000, 20000), (45000, 30000), (90000, 60000), (210000, 120000),
    (450000, 300000), (750000, 600000), (1050000, 900000), (1500000, 1200000),
    (2700000, 1800000), (5400000, 3600000), (9000000, 7200000),
    (16200000, 10800000), (24300000, 21600000), (32400000, 28800000),
    (86400000, 43200000), (604800000, 86400000), (1814400000, 604800000),
    (3628800000, 2592000000),
]


def parse_duration_s(text):
    m = re.fullmatch(r"(\d+)([smhd])", text or "")
    if not m:
        return 1
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def grafana_interval_s(t_from, t_to, max_points, min_interval):
    raw_ms = (t_to - t_from) * 1000 / max_points
    ms = next((r for below, r in _ROUND_MS if raw_ms < below), 31536000000)
    return max(ms // 1000, parse_duration_s(min_interval), 1)


# ---- dashboard walking -----------------------------------------------------

def clickhouse_variables(dash):
    out = []
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query" and v.get("datasource", {}).get("type") == PLUGIN:
            q = v["query"]
            out.append((v["name"], q if isinstance(q, str) else q["rawSql"]))
    return out


def clickhouse_targets(dash):
    for p in dash["panels"]:
        for t in p.get("targets", []):
            if "rawSql" in t and t.get("datasource", p.get("datasource", {})).get("type") == PLUGIN:
                yield p, t


def modes(options):
    """Variable states for the three runs; `options` is {name: [values]}."""
    out = {"all": {n: {"all": True, "values": vs} for n, vs in options.items()}}
    if all(options.values()):
        out["every"] = {n: {"all": False, "values": vs} for n, vs in options.items()}
        out["one"] = {n: {"all": False, "values": vs[:1]} for n, vs in options.items()}
    return out


# ---- ClickHouse over HTTP --------------------------------------------------

class QueryError(Exception):
    pass


def run(url, database, user, password, sql):
    req = urllib.request.Request(
        url.rstrip("/") + "/?" + urllib.parse.urlencode({"database": database}),
        data=(sql + "\nFORMAT JSONCompact").encode(),
        method="POST",
    )
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read().decode())["data"]
    except urllib.error.HTTPError as e:
        raise QueryError(e.read().decode(errors="replace").strip()) from None
    except urllib.error.URLError as e:
        raise QueryError(f"cannot reach {url}: {e.reason}") from None


def normalised(rows):
    def cell(x):
        if isinstance(x, float):
            return f"{x:.9g}"
        return json.dumps(x, ensure_ascii=False)
    return sorted(tuple(cell(x) for x in r) for r in rows)


def main():
    database = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CH_DATABASE", "tradewind")
    url = os.environ.get("CH_URL", "http://127.0.0.1:8123")
    user = os.environ.get("CH_USER", "default")
    password = os.environ.get("CH_PASSWORD", "")
    q = lambda sql: run(url, database, user, password, sql)  # noqa: E731

    dash = json.loads(DASHBOARD.read_text())
    version = q("SELECT version()")[0][0]
    major = int(version.split(".")[0])
    time_interval = plugin_time_interval if major >= 20 else old_server_time_interval
    print(f"server {url} ClickHouse {version}, database {database}")

    extent = q(
        "SELECT min(lo), max(hi), sum(n) FROM ("
        "SELECT toUInt32(min(window_start)) AS lo, toUInt32(max(window_start)) AS hi, count() AS n FROM trade_corridors "
        "UNION ALL SELECT toUInt32(min(window_start)), toUInt32(max(window_start)), count() FROM logistics_sla "
        "UNION ALL SELECT toUInt32(min(window_start)), toUInt32(max(window_start)), count() FROM iot_health) "
        "WHERE n > 0"
    )[0]
    if not extent[2] or int(extent[2]) == 0:
        raise SystemExit(f"FAILED: database {database} has no metric rows to check against")
    t_from, t_to = int(extent[0]), int(extent[1]) + 59
    print(f"time range: {t_from}..{t_to} ({(t_to - t_from) / 3600:.1f} h, every row)")

    options = {}
    all_state = {}
    for name, sql in clickhouse_variables(dash):
        try:
            values = [str(r[0]) for r in q(render(sql, all_state, t_from, t_to, 60, time_interval))]
        except (QueryError, ValueError) as e:
            raise SystemExit(f"FAILED: variable ${name}: {e}")
        if not values:
            raise SystemExit(f"FAILED: variable ${name} returned no values")
        options[name] = values
        print(f"variable ${name}: {len(values)} values: {', '.join(values)}")

    runs = modes(options)
    checked = 0
    for panel, target in clickhouse_targets(dash):
        title = panel.get("title", f"panel {panel.get('id')}")
        ts = target.get("queryType") == "timeseries"
        interval_s = grafana_interval_s(t_from, t_to, panel.get("maxDataPoints", 1000), panel.get("interval"))
        results = {}
        for mode, state in runs.items():
            sql = target["rawSql"]
            try:
                sql = render(sql, state, t_from, t_to, interval_s, time_interval)
                results[mode] = q(sql)
            except (QueryError, ValueError) as e:
                raise SystemExit(f"FAILED: panel {title!r} ({mode} values): {e}\n  SQL: {sql}")
            checked += 1
        rows = results["all"]
        if "every" in results and normalised(results["every"]) != normalised(rows):
            raise SystemExit(
                f"FAILED: panel {title!r}: every value selected gives {len(results['every'])} rows, "
                f"All gives {len(rows)}; the filters do not match the variables' values"
            )
        note = ""
        if ts:
            per_series = {}
            for r in rows:
                key = tuple(r[1:2])
                per_series[key] = per_series.get(key, 0) + 1
            most = max(per_series.values(), default=0)
            limit = int(panel.get("maxDataPoints", 1000) * 1.5) + 2
            if most > limit:
                raise SystemExit(f"FAILED: panel {title!r}: {most} points in one series, over {limit}")
            note = f", interval {interval_s}s, {len(per_series)} series, at most {most} points each (maxDataPoints {panel.get('maxDataPoints')})"
        shown = f" {rows[0]}" if len(rows) == 1 else ""
        print(f"ok  {title}: {len(rows)} row(s){shown}{note}; one-value run {len(results.get('one', []))} row(s)")
    print(f"dashboard queries ok: {checked} runs of {sum(1 for _ in clickhouse_targets(dash))} panel queries, "
          f"{len(options)} variable queries")


if __name__ == "__main__":
    main()
