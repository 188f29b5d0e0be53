#!/usr/bin/env python3
"""Runs Tradewind's SQL on a current ClickHouse engine (chDB, ClickHouse
embedded in Python; `pip install chdb`), alongside the test suite's
ClickHouse server: every migration in order, rows through the merged
views, the dashboard's and reconcile's queries (the `.sql` files of
`crates/tradewind-clickhouse/queries/`, which the Rust code includes), the Grafana dashboards' queries, and the
example queries of the README and demo.sh.

    python3 deploy/check/modern_clickhouse.py   # exit 1 on the first failure
"""
import json
import pathlib
import re
import sys

import chdb.session

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.dont_write_bytecode = True  # no __pycache__ next to the Grafana provisioning
sys.path.insert(0, str(ROOT / "deploy/compose/grafana"))
import check_sql as grafana  # noqa: E402


def statements(sql):
    code = "\n".join(l for l in sql.splitlines() if not l.lstrip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]


# A sample value for each placeholder name of a query's `-- binds:` line.
SAMPLE_BINDS = {
    "from": "0", "to": "4000000000", "bucket": "60", "topic": "'t'",
    # Dashboard filters: empty means any.
    "payer": "''", "payee": "''", "country": "''", "method": "''",
    "channel": "''", "mode": "''", "kind": "''",
}


def query_files():
    """(name, SQL with its `?` filled in) for every query file."""
    for f in sorted((ROOT / "crates/tradewind-clickhouse/queries").glob("*.sql")):
        sql = f.read_text()
        names = []
        for line in sql.splitlines():
            if line.startswith("-- binds:"):
                names = line.split(":", 1)[1].split()
        parts = sql.split("?")
        assert len(parts) - 1 == len(names), f"{f.name}: {len(parts) - 1} placeholders, binds {names}"
        yield f.name, parts[0] + "".join(SAMPLE_BINDS[n] + p for n, p in zip(names, parts[1:]))


def main():
    s = chdb.session.Session()
    print("engine:", s.query("SELECT version()", "CSV").data().strip())
    s.query("CREATE DATABASE IF NOT EXISTS tradewind")
    s.query("USE tradewind")
    for f in sorted((ROOT / "crates/tradewind-clickhouse/migrations").glob("*.sql")):
        for st in statements(f.read_text()):
            s.query(st)
        print("migration ok:", f.name)

    # Two partitions' rows for one corridor window; the view must merge them.
    s.query(
        "INSERT INTO trade_corridors (window_start, payer, payee, method, channel, currency, topic, partition, "
        "version, payments, captured, failed, refunded, amount_minor, amount_min, amount_max, "
        "amount_hist_keys, amount_hist_counts, buyers_sketch) VALUES "
        "('2026-11-11 00:00:00', 'CN', 'DE', 'card', 'web', 'EUR', 't', 0, 5, 3, 3, 0, 0, 300, 100, 100, [1], [3], [261, 513]), "
        "('2026-11-11 00:00:00', 'CN', 'DE', 'card', 'web', 'EUR', 't', 0, 4, 9, 9, 0, 0, 900, 100, 100, [1], [9], [261]), "
        "('2026-11-11 00:00:00', 'CN', 'DE', 'card', 'web', 'EUR', 't', 1, 7, 2, 1, 1, 0, 200, 100, 100, [1], [2], [515, 1024])"
    )
    row = s.query(
        "SELECT payments, amount_minor, buyers_hll, buyers FROM trade_corridors_merged", "JSONCompact"
    ).data()
    got = json.loads(row)["data"][0]
    # version 5 replaces version 4 in partition 0; index 2 keeps rank 3.
    assert got[0] in (5, "5") and got[1] in (500, "500"), got
    assert got[2] == [1024, 515, 261], got
    assert got[3] in (3, "3"), got
    print("merged views ok:", got)

    checked = 0
    for name, q in query_files():
        s.query(q)
        checked += 1
    print(f"query files ok: {checked}")

    # The Grafana dashboards: template variables and macros resolved as the
    # grafana-clickhouse-datasource plugin does (deploy/compose/grafana/check_sql.py),
    # with the plugin's own $__timeInterval expansion (toStartOfInterval), the
    # whole time range and a one-minute interval. Variable queries first, then
    # every panel with the variables on All, on each value, and on one value.
    checked = 0
    for f in sorted((ROOT / "deploy/compose/grafana/dashboards").glob("*.json")):
        dash = json.loads(f.read_text())
        span = (0, 4294967295, 60)
        options = {}
        for name, sql in grafana.clickhouse_variables(dash):
            res = json.loads(s.query(grafana.render(sql, {}, *span), "JSONCompact").data())
            options[name] = [str(r[0]) for r in res["data"]]
            checked += 1
        for _, t in grafana.clickhouse_targets(dash):
            for state in grafana.modes(options).values():
                s.query(grafana.render(t["rawSql"], state, *span))
                checked += 1
    print(f"grafana queries ok: {checked}")

    checked = 0
    readme = (ROOT / "README.md").read_text()
    for block in re.findall(r"```sql\n(.*?)```", readme, re.S):
        for st in statements(block):
            s.query(st)
            checked += 1
    print(f"README queries ok: {checked}")

    demo = (ROOT / "deploy/local/demo.sh").read_text()
    queries = re.findall(r'^q "(.*)"$', demo, re.M)
    for q in queries:
        s.query(q)
    print(f"demo.sh queries ok: {len(queries)}")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # chdb raises plain RuntimeError with the server's text
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
