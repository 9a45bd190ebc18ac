"""Every collector module, imported explicitly so that the registry (and the config schema) know them.

Adding a collector: write `collectors/<name>.py` (or a folder) with `@register("<name>", Settings)` and
add its import here.
"""

from gpuwarden.collectors import gpu  # noqa: F401
from gpuwarden.collectors import node  # noqa: F401
from gpuwarden.collectors import textfile  # noqa: F401
from gpuwarden.collectors import network  # noqa: F401
from gpuwarden.collectors import business  # noqa: F401
from gpuwarden.collectors import zookeeper  # noqa: F401
from gpuwarden.collectors import engine  # noqa: F401
