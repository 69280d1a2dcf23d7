"""A nats-server node for one lane, as a process: its config file, start, readiness, kill, stop.

On a Pi the node runs under systemd (systemd/selfcheckout-nats.service) from the config `node_config`
writes; the demo, the tests and the bench start nodes themselves in temporary folders on free ports. Each
node keeps its JetStream files in its own folder and joins the other lanes' nodes as cluster routes.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gate.errors import GateError

CLUSTER_NAME = "selfcheckout"
MONITOR_PORT = 8222  # nats-server's HTTP monitor, on 127.0.0.1 only

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A child's preexec_fn: SIGTERM when the thread that started it ends, even when it is killed hard, so
    no node outlives the demo or test that started it (Linux)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class NatsServerError(GateError, RuntimeError):
    """nats-server is not installed, or a node did not start or become ready."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class NodeAddress:
    """Where one node listens: clients (the lanes), the cluster routes, and its HTTP monitor."""

    name: str
    host: str
    client_port: int
    cluster_port: int
    monitor_port: int
    monitor_host: str = ""  # the HTTP monitor's address; the node's own host when empty

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.client_port}"

    @property
    def route(self) -> str:
        return f"nats://{self.host}:{self.cluster_port}"


def node_config(node: NodeAddress, store_dir: Path, routes: Sequence[NodeAddress]) -> str:
    """The nats-server config of one lane's node: JetStream on, clustered with the other lanes' nodes."""
    lines = [
        f'server_name: "{node.name}"',
        f'listen: "{node.host}:{node.client_port}"',
        f'http: "{node.monitor_host or node.host}:{node.monitor_port}"',
        "jetstream {",
        f'  store_dir: "{store_dir}"',
        "  max_memory_store: 16MB",
        "  max_file_store: 256MB",
        "}",
    ]
    others = [r for r in routes if r.name != node.name]
    if others:
        lines += [
            "cluster {",
            f'  name: "{CLUSTER_NAME}"',
            f'  listen: "{node.host}:{node.cluster_port}"',
            # A lane uses the nodes its [peers] servers lists, never others learnt from the cluster.
            "  no_advertise: true",
            "  routes: [" + ", ".join(f'"{r.route}"' for r in others) + "]",
            "}",
        ]
    return "\n".join(lines) + "\n"


def lane_node(gate: str, servers: Sequence[str], cluster_port: int) -> tuple[NodeAddress, list[NodeAddress]]:
    """This lane's node and every node of the store, from [peers] servers (the lane's own node first)."""
    nodes = []
    for i, url in enumerate(servers):
        host, _, port = url.removeprefix("nats://").rpartition(":")
        name = gate if i == 0 else f"node-{host}-{port}"
        nodes.append(NodeAddress(name, host, int(port), cluster_port, MONITOR_PORT, "127.0.0.1"))
    return nodes[0], nodes


def local_nodes(count: int, host: str = "127.0.0.1") -> list[NodeAddress]:
    """`count` nodes on free ports of this machine (tests, bench, demo)."""
    return [
        NodeAddress(f"lane-{i + 1}", host, free_port(host), free_port(host), free_port(host))
        for i in range(count)
    ]


class NatsServer:
    """One nats-server node in `folder`, owned by this process."""

    def __init__(
        self,
        folder: Path,
        node: NodeAddress,
        routes: Sequence[NodeAddress] = (),
        *,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            raise NatsServerError("nats-server is not installed (apt-get install nats-server)")
        self.binary = binary
        self.node = node
        self.folder = folder
        self.config_path = folder / f"{node.name}.conf"
        self.log_path = folder / f"{node.name}.log"
        folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(node_config(node, folder / f"{node.name}-js", routes))
        self.preexec_fn = preexec_fn
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.node.url

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, *, wait: bool = True, timeout_s: float = 10.0) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self.preexec_fn,
            )
        if wait:
            self.wait_listening(timeout_s)

    def wait_listening(self, timeout_s: float = 10.0) -> None:
        """Until the node answers its monitor's /varz (it takes clients from then on)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise NatsServerError(f"nats-server {self.node.name} exited: {self.log_tail()}")
            with (
                contextlib.suppress(OSError, ValueError),
                urllib.request.urlopen(
                    f"http://{self.node.host}:{self.node.monitor_port}/varz", timeout=1
                ) as answer,
            ):
                json.loads(answer.read())
                return
            if time.monotonic() > deadline:
                raise NatsServerError(f"nats-server {self.node.name} not listening after {timeout_s} s")
            time.sleep(0.02)

    def rss_bytes(self) -> int:
        """Resident memory of the node, from /proc."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def kill(self) -> None:
        """SIGKILL: the lane's transport gone at once, as when its Pi loses power or its cable."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-800:]
        return "(no log)"

    def __enter__(self) -> NatsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NatsCluster:
    """`count` clustered nodes on this machine, one per lane (tests, bench, a demo with nats-server)."""

    def __init__(self, folder: Path, count: int, *, preexec_fn: Callable[[], None] | None = None) -> None:
        self.nodes = local_nodes(count)
        routes = self.nodes if count > 1 else []
        self.servers = [NatsServer(folder, n, routes, preexec_fn=preexec_fn) for n in self.nodes]

    def start(self, timeout_s: float = 10.0) -> None:
        for server in self.servers:
            server.start(wait=False)
        for server in self.servers:
            server.wait_listening(timeout_s)

    def urls(self, first: int = 0) -> list[str]:
        """Every node's client URL, node `first` (the lane's own) first."""
        order = self.servers[first:] + self.servers[:first]
        return [s.url for s in order]

    def close(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
