"""One module per Grafana dashboard; each has build() -> the dashboard's JSON model."""
