"""The monitoring mixin of onepin-exporter: Grafana dashboards and Prometheus alert rules written
in Python from one set of PromQL selectors and expressions (monitoring/promql.py).

    python -m monitoring          # write grafana/dashboards/*.json, prometheus/alerts.yml and
                                  # deploy/kubernetes/prometheusrule.yaml
    python -m monitoring --check  # exit 1 if a committed file differs from what it would write

Not part of the exporter's package: nothing here runs in the exporter.
"""
