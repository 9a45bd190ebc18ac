"""Every collector, declared explicitly so that the registry (and the config schema) know them.

Only each collector's settings model is imported here; its implementation (and the libraries it needs)
is imported when the daemon builds it, so a disabled collector costs no memory beyond its settings.
Adding a collector: write `collectors/<name>.py` (or a folder) with `@register("<name>", Settings)` on the
class, and declare it here.
"""

from gpuwarden.agent.registry import declare
from gpuwarden.collectors.doctor.settings import DoctorSettings
from gpuwarden.collectors.engine.settings import EngineSettings
from gpuwarden.collectors.gpu.settings import GpuSettings
from gpuwarden.collectors.inference.settings import InferenceSettings
from gpuwarden.collectors.network.settings import NetworkSettings
from gpuwarden.collectors.node import NodeSettings
from gpuwarden.collectors.textfile import TextfileSettings
from gpuwarden.collectors.zookeeper.settings import ZookeeperSettings

declare("doctor", DoctorSettings, "gpuwarden.collectors.doctor.collector:DoctorCollector")
declare("engine", EngineSettings, "gpuwarden.collectors.engine.collector:EngineCollector")
declare("gpu", GpuSettings, "gpuwarden.collectors.gpu.collector:GpuCollector")
declare("inference", InferenceSettings, "gpuwarden.collectors.inference.collector:InferenceCollector")
declare("network", NetworkSettings, "gpuwarden.collectors.network.collector:NetworkCollector")
declare("node", NodeSettings, "gpuwarden.collectors.node:NodeCollector")
declare("textfile", TextfileSettings, "gpuwarden.collectors.textfile.collector:TextfileCollector")
declare("zookeeper", ZookeeperSettings, "gpuwarden.collectors.zookeeper.collector:ZookeeperCollector")
