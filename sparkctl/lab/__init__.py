"""`sparkctl lab`: a virtual cluster of DGX Sparks on one Linux machine, for development and tests.

Each Spark is a network namespace booting this machine's own OS with systemd (systemd-nspawn), with
sshd, the management port enP7s7 and the four ConnectX-7 netdevs named as on a real Spark. Cables
are veth pairs, one per PCIe half. Modules: `paths` (names and files), `topology` (what is cabled),
`state` (the on-disk record `down` relies on), `network` (bridges and veths), `nodes` (containers),
`cabling`, `faults`, `inventory` (the Ansible contract), `preflight`, `lifecycle` (up/down/status).
"""
