"""Code that runs on the Sparks themselves: the steps of sparkctl's roles (`steps`) and what they use.

The action plugins of the roles' `sparkctl_*` tasks send this package's sources to the node's Python
with each step (`sparkctl.ansible_node_step`), and doctor and status send single files of it, so it
uses the standard library only and no other part of sparkctl: a node has Python but not sparkctl. The
controller imports the same code to unit-test it without a network.
"""
