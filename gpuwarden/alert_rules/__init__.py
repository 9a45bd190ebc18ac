"""Prometheus alert and recording rules, Prometheus and Alertmanager configs, from one `Mixin`.

`mixin.py` holds every threshold and window with its reason; `gpu.py` and `service.py` the alert groups;
`recording.py` the shared fleet aggregates; `routing.py` the Alertmanager routes and the Prometheus scrape
config; `build.py` writes them (`gpuwarden rules build`). `series.py` checks every name against the catalogs.
"""
