"""Every collector module, imported explicitly so that the registry (and the config schema) know them.

Adding a collector: write `collectors/<name>.py` (or a folder) with `@register("<name>", Settings)` and
add its import here.
"""

from gpuwarden.collectors import (
    doctor,  # noqa: F401
    engine,  # noqa: F401
    gpu,  # noqa: F401
    inference,  # noqa: F401
    network,  # noqa: F401
    node,  # noqa: F401
    textfile,  # noqa: F401
    zookeeper,  # noqa: F401
)
