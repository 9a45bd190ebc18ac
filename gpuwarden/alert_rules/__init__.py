"""Prometheus alert and recording rule generators, thresholds in one place (not built yet).

The series to alert on are listed per area in docs/<area>.md and in the collectors' catalogs.
"""
