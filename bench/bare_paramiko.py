"""The floor: a bare paramiko loop doing exactly the per-host steps of a scan, no engine.

connect -> mkdtemp -> put payload + patterns -> run the scanner -> get its log -> rm -rf,
in a thread pool of the same size as plantsweep's forks.
"""

from __future__ import annotations

import shlex
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import paramiko


def _one(host: dict[str, Any], payload: Path, patterns_zip: Path, args: list[str]) -> bool:
    client = paramiko.SSHClient()
    client.load_host_keys(host["known_hosts"])
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        host["address"],
        username="root",
        key_filename=host["key"],
        timeout=10,
        allow_agent=False,
        look_for_keys=False,
    )
    try:
        py = host["python"]

        def run(cmd: str) -> str:
            _, out, err = client.exec_command(cmd)
            text = out.read().decode()
            if out.channel.recv_exit_status() != 0:
                raise RuntimeError(err.read().decode())
            return text

        tmp = run("mktemp -d /tmp/bare-XXXXXXXX").strip()
        sftp = client.open_sftp()
        sftp.put(str(payload), f"{tmp}/scanner.pyz")
        sftp.put(str(patterns_zip), f"{tmp}/patterns.zip")
        q = shlex.quote
        run(
            f"cd {q(tmp)} && "
            f"{py} -I -B scanner.pyz --out {tmp}/log.json --patterns {tmp}/patterns.zip "
            + " ".join(q(a) for a in args)
        )
        with tempfile.TemporaryDirectory() as local:
            sftp.get(f"{tmp}/log.json", f"{local}/log.json")
        sftp.close()
        run(f"rm -rf {q(tmp)}")
        return True
    finally:
        client.close()


def run_bare(
    hosts: list[dict[str, Any]], payload: Path, patterns_zip: Path, args: list[str], workers: int
) -> int:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(lambda h: _one(h, payload, patterns_zip, args), hosts))
    return sum(done)
