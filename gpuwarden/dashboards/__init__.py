"""grafanalib dashboard generators: pure functions from config to dashboards (not built yet).

They will read the metric catalogs (`CATALOG` in each collector module) so that every panel's query names a
series the agent really exports.
"""
