"""A fake kubelet for the fake Kubernetes API server (tests/fake_kube_api.py): it runs
each pod the provider creates as a local process, from the pod spec alone, so that the
spec is proven to make a worker that registers and runs jobs.

What it takes from the pod: the container's `args` after the image's ENTRYPOINT
(`hodei`, i.e. `python -m hodei.cli`), its plain `env`, and every `secretKeyRef` resolved
from the Secret stored in the fake (base64, as the API keeps it). The only thing it
adds is `HODEI_WORKER_METRICS_PORT=0`: real pods each have their own network, these
processes share the host's. Deleting the pod sends SIGTERM (the kubelet's stop).
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fake_kube_api import FakeKubeApi


class FakeKubelet:
    def __init__(self, api: FakeKubeApi, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        api.on_pod_created = self._run
        api.on_pod_deleted = self._kill

    def _run(self, pod: dict[str, Any], secrets: dict[str, dict[str, Any]]) -> None:
        [container] = pod["spec"]["containers"]
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HODEI_")}
        for var in container.get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"]
            else:
                ref = var["valueFrom"]["secretKeyRef"]
                encoded = secrets[ref["name"]]["data"][ref["key"]]
                env[var["name"]] = base64.b64decode(encoded).decode()
        env["HODEI_WORKER_METRICS_PORT"] = "0"
        name = pod["metadata"]["name"]
        with (self.log_dir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "hodei.cli", *container["args"]],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        pod["status"] = {"phase": "Running"}

    def _kill(self, pod: dict[str, Any]) -> None:
        process = self.processes.get(pod["metadata"]["name"])
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)

    def running(self) -> list[str]:
        return sorted(name for name, p in self.processes.items() if p.poll() is None)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
