"""`sparkctl verify-link`: turn the output of standard Linux tools into verdicts about each fabric link.

The modules here are pure: each `parse_*` module reads the text one tool prints (iperf3, ethtool, ping,
lspci, ib_write_bw, nccl-tests, iproute2) into a typed result, and `verdicts` judges those results
against what the plan expects, naming the fix for every failure. Running the tools on the nodes is a
separate concern, so everything here is tested against real captured output without a network.
`peer_probe` is the exception: a stdlib-only script copied to a node to learn who is on the other
end of a cable before any address exists.
"""
