"""Lab stand-ins for what a virtual Spark cannot have: a container engine and GPU model servers.

`sparkctl lab` nodes are systemd-nspawn containers without a Docker engine or a GPU, yet `sparkctl
deploy` runs each service as a systemd unit whose command is `docker run ... IMAGE ARGS`. So the lab
bind-mounts this directory read-only at /opt/sparkctl-lab/standins in every node and puts `docker.py`
where the units find `docker`. The stand-in validates a run the way the real engine and runtime would
refuse it, then execs a stand-in server speaking the real API of the image's program (vLLM, Ollama,
Orpheus/Qwen TTS, or a user's container) so that real clients, health checks and benchmarks work.

Every file here runs on a node under the host's /usr/bin/python3 with no sparkctl installed: standard
library only, each one runnable by path, the servers importing only their sibling `http_common`.
Nothing here is used on real Sparks; everything that prints says it is a stand-in.
"""
