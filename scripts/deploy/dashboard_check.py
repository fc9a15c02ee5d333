#!/usr/bin/env python3
"""Checks deploy/grafana's dashboard as Grafana would load it, and the metric names it and the
alert rules use:
  - the JSON parses; it has a title, a uid, a schemaVersion, a Prometheus datasource variable;
  - every panel has a unique id, a type, a gridPos inside the 24-column grid, and targets whose
    expr is non-empty with a unique refId, using the datasource variable;
  - every troupe:* metric named in a panel expr or an alert expr is exported by the server
    (a name of server/metrics.cc, histograms with their _bucket/_sum/_count series).
Usage: dashboard_check.py DASHBOARD.json ALERTS.yml METRICS.cc
"""
import json
import re
import sys


def exported_names(metrics_cc):
    names = set()
    text = open(metrics_cc).read()
    for name in re.findall(r'"(troupe:[a-z0-9_]+)"', text):
        names.update({name, name + "_bucket", name + "_sum", name + "_count"})
    return names


def main():
    dashboard_path, alerts_path, metrics_cc = sys.argv[1:4]
    exported = exported_names(metrics_cc)
    failures = []
    dashboard = json.load(open(dashboard_path))
    for key in ("title", "uid", "schemaVersion", "panels"):
        if key not in dashboard:
            failures.append(f"dashboard has no {key}")
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    if variables.get("datasource", {}).get("type") != "datasource" or variables["datasource"].get("query") != "prometheus":
        failures.append("no Prometheus datasource variable named 'datasource'")
    ids = set()
    exprs = []
    for panel in dashboard.get("panels", []):
        where = f"panel {panel.get('title')!r}"
        if panel.get("id") in ids:
            failures.append(f"{where}: duplicate id")
        ids.add(panel.get("id"))
        if not panel.get("type"):
            failures.append(f"{where}: no type")
        grid = panel.get("gridPos", {})
        if not all(k in grid for k in "hwxy") or grid["x"] + grid["w"] > 24:
            failures.append(f"{where}: bad gridPos {grid}")
        refs = set()
        for target in panel.get("targets", []):
            if not target.get("expr"):
                failures.append(f"{where}: empty expr")
            if target.get("refId") in refs:
                failures.append(f"{where}: duplicate refId")
            refs.add(target.get("refId"))
            if target.get("datasource", {}).get("uid") != "${datasource}":
                failures.append(f"{where}: a target not on the datasource variable")
            exprs.append((where, target.get("expr", "")))
        if not panel.get("targets"):
            failures.append(f"{where}: no targets")
    for line in open(alerts_path):
        if "troupe:" in line:
            exprs.append(("alerts.yml", line))
    for where, expr in exprs:
        for name in re.findall(r"(troupe:[a-z0-9_]+)", expr):
            if name not in exported:
                failures.append(f"{where}: {name} is not a metric the server exports")
    for failure in failures:
        print("FAIL:", failure, file=sys.stderr)
    print(f"dashboard_check: {len(dashboard.get('panels', []))} panels, {len(exprs)} expressions checked")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
