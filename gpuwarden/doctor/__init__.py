"""`gpuwarden doctor`: the preflight of an inference node, as one command and as metrics."""
