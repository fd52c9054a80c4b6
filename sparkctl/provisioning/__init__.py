"""`sparkctl provision`: the Ansible playbooks of this repository, run through ansible-runner.

The CLI stays thin: it validates the inventory with the same planner the playbooks use, runs
`playbooks/site.yml` with a few typed extra variables, shows per-node progress and ends with a
per-node summary. Everything it does on the nodes, a plain `ansible-playbook` run does too.
"""
