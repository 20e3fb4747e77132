"""The SNASNet network as pure functions over parameter pytrees.

* :mod:`snnax_nas.network.skeleton`: the macro network (stem, cells,
  reduction block, head, time loop) and the cell's node graph, shared by
* :mod:`snnax_nas.network.supernet`: the architecture as data, every op on
  every edge (the scorer's hot path), and
* :mod:`snnax_nas.network.standalone`: one genotype built alone, only its
  ops (the network one trains; :class:`snnax_nas.models.SpikingNetwork` is
  the same network as a flax Module).

:mod:`snnax_nas.network.variables` is the one inventory of the network's
weight tensors (named as the Module's variables) that every count, export
and initialisation derives from.

The layers (convolution, pooling, batch norm, parameter specs) are in
:mod:`snnax_nas.layers`, the config in :mod:`snnax_nas.configs`; both are
re-exported here for callers of this package.
"""

from snnax_nas.configs import PRESETS
from snnax_nas.configs import NetworkConfig
from snnax_nas.configs import network_config
from snnax_nas.layers import BN_EPS
from snnax_nas.layers import BN_MOMENTUM
from snnax_nas.layers import ParamSpec
from snnax_nas.layers import avg_pool
from snnax_nas.layers import batch_norm
from snnax_nas.layers import conv2d
from snnax_nas.layers import init_batch_stats
from snnax_nas.layers import materialize
from snnax_nas.layers import pool3x3
from snnax_nas.network.skeleton import Params
from snnax_nas.network.skeleton import Probe
from snnax_nas.network.skeleton import call_probe
from snnax_nas.network.skeleton import cell_wiring
from snnax_nas.network.skeleton import edge_ops
from snnax_nas.network.skeleton import network_genotypes
from snnax_nas.network.skeleton import spike_counts
from snnax_nas.network.standalone import init_standalone_params
from snnax_nas.network.standalone import standalone_forward
from snnax_nas.network.standalone import standalone_from_supernet
from snnax_nas.network.standalone import standalone_param_specs
from snnax_nas.network.supernet import init_supernet_params
from snnax_nas.network.supernet import supernet_forward
from snnax_nas.network.supernet import supernet_param_specs
from snnax_nas.network.variables import edge_name
from snnax_nas.network.variables import edge_param_specs
from snnax_nas.network.variables import fixed_param_specs
from snnax_nas.network.variables import param_specs
from snnax_nas.network.variables import standalone_from_variables
from snnax_nas.network.variables import variable_shapes
from snnax_nas.network.variables import variables_from_standalone

__all__ = [
    "BN_EPS", "BN_MOMENTUM", "PRESETS", "NetworkConfig", "ParamSpec", "Params", "Probe",
    "avg_pool", "batch_norm", "call_probe", "cell_wiring", "conv2d", "edge_ops",
    "edge_name", "edge_param_specs", "fixed_param_specs", "init_batch_stats", "init_standalone_params",
    "init_supernet_params", "materialize", "network_config", "network_genotypes", "param_specs",
    "pool3x3", "spike_counts", "standalone_forward", "standalone_from_supernet", "standalone_from_variables",
    "standalone_param_specs", "supernet_forward", "supernet_param_specs", "variable_shapes",
    "variables_from_standalone",
]
