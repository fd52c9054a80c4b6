"""Services on the Sparks: what the inventory declares (`sparkctl_services`), checked, laid out on the
nodes as systemd units that run containers, and their health.

spec.py reads and checks the declarations; layout.py places them on the fabric plan (addresses, URLs,
units); the health checks run on the nodes (sparkctl.node.health).
"""
