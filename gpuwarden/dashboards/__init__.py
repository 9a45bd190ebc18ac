"""Grafana dashboards with grafanalib: pure functions from the `Mixin` to dashboards.

`panels.py` is the thin layer over grafanalib (React panels, units, thresholds, grid); one module per
dashboard group; `build.py` writes them (`gpuwarden dashboards build`). Queries name catalog series only.
"""
