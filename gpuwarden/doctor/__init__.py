"""`gpuwarden doctor`: the preflight of an inference node, as one command and as metrics.

Kept import-light on purpose: `gpu` and `software` need only the standard library (and pynvml), so the
same functions run in a bare GPU image to record what a real node answers.
"""
