"""The NCCL / UCX / MPI / PyTorch environment a node's jobs need to use the fabric it was given.

The bootstrap (socket) traffic goes over one interface every node can reach every other on; the RDMA
traffic goes over exactly the RoCE devices of the cabled halves, since NCCL pairs NCCL_IB_HCA entries
by position and an idle or link-local port in that list makes it time out. The RoCE GID index is
never pinned: it drifts at run time (3 -> 4 has been seen), so NCCL is told the GID *kind* (RoCE v2,
IPv4) and finds the index itself each time a job starts.
"""

from __future__ import annotations

from sparkctl import hardware
from sparkctl.model import NodePlan


def node_environment(node: NodePlan, topology: str, bootstrap_interface: str) -> dict[str, str]:
    """The environment for one node, in a stable order."""
    rdma = [hardware.RDMA_DEVICES[i.name] for i in node.interfaces if i.role in ("peer", "switch", "bond-member")]
    env = {
        "NCCL_SOCKET_IFNAME": bootstrap_interface,
        "GLOO_SOCKET_IFNAME": bootstrap_interface,
        "TP_SOCKET_IFNAME": bootstrap_interface,
        "UCX_NET_DEVICES": bootstrap_interface,
        "OMPI_MCA_btl_tcp_if_include": bootstrap_interface,
        "OMPI_MCA_oob_tcp_if_include": bootstrap_interface,
        "NCCL_IB_HCA": ",".join(rdma),
        "NCCL_IB_SUBNET_AWARE_ROUTING": "1",
        "NCCL_IB_ROCE_VERSION_NUM": "2",
        "NCCL_IB_ADDR_FAMILY": "AF_INET",
    }
    if topology == "ring":
        env |= {"NCCL_IB_MERGE_NICS": "0", "NCCL_NET_PLUGIN": "none", "NCCL_ALGO": "Ring"}
    return env
