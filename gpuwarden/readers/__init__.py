"""Readers of host facts shared by the collectors and the doctor: /proc/meminfo, transparent huge pages,
/proc/net/dev and /sys/class/net, /sys/class/infiniband.

Parsing is pure and table-tested; reads go through `Paths`, so a fixture tree stands in for the host.
This layer imports nothing from `gpuwarden.collectors`: collectors and the doctor both import it.
"""
