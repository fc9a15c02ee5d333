#!/usr/bin/env bash
# Checks the monitoring configuration in deploy/: the Prometheus alert rules parse and their
# unit tests pass (promtool, Debian's prometheus package), the Grafana dashboard loads as a
# dashboard (scripts/deploy/dashboard_check.py), and every troupe metric the rules and the
# dashboard query is one the server exports (server/metrics.cc). Also the HAProxy gateway
# (deploy/gateway/haproxy.cfg) parses with no warning (`haproxy -c`, Debian's haproxy package;
# nginx.conf is checked and run by scripts/fleet-test.sh).
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo_root"
command -v promtool >/dev/null || { echo "check-monitoring: promtool missing (scripts/install-deps.sh)" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "check-monitoring: haproxy missing (scripts/install-deps.sh)" >&2; exit 1; }
promtool check config deploy/prometheus/prometheus.yml >/dev/null
promtool check rules deploy/prometheus/alerts.yml >/dev/null
(cd deploy/prometheus && promtool test rules alerts_test.yml >/dev/null)
python3 scripts/deploy/dashboard_check.py deploy/grafana/troupe-dashboard.json deploy/prometheus/alerts.yml server/metrics.cc
haproxy -dW -c -f deploy/gateway/haproxy.cfg >/dev/null  # -dW: a warning fails the check too
echo "check-monitoring: ok"
