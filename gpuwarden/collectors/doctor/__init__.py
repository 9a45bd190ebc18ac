"""The `doctor` collector and `gpuwarden doctor`: the preflight of an inference node, as one command and
as a collector whose findings reach /health and the metrics (collector.py, imported when it is built)."""
