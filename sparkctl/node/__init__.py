"""Code that runs on the Sparks themselves, inside Ansible modules.

Ansible ships it to each node with the module that imports it (as `ansible.module_utils.sparkctl_node`,
a link to this package), so it uses the standard library only and no other part of sparkctl: a node has
Python but not sparkctl. The controller imports the same code to unit-test it without a network.
"""
