"""`sparkctl verify-link`: turn the output of standard Linux tools into verdicts about each fabric link.

The modules here are pure: each `parse_*` module reads the text one tool prints (iperf3, ethtool, ping,
lspci, ib_write_bw, nccl-tests, iproute2) into a typed result, and `verdicts` judges those results
against what the plan expects, naming the fix for every failure. Running the tools on the nodes is a
separate concern, so everything here is tested against real captured output without a network.
The scripts that run on the nodes themselves (peer_probe, node_facts, gid_index) live with the rest
of the on-node code in sparkctl/node.
"""
