"""The `copbot` command's preparation: CAs looked up in the hashed directory still verify servers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLIENT = """
import asyncio, sys, aiohttp
from bot.launch import prepare
prepare()
async def main():
    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(sys.argv[1]) as response:
                print(response.status)
        except aiohttp.ClientConnectorCertificateError:
            print("refused")
asyncio.run(main())
"""


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a test CA")
def test_a_server_is_verified_by_a_ca_found_in_the_hashed_directory(tmp_path: Path) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=copbot test CA", cwd=tmp_path)  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost", cwd=tmp_path)  # fmt: skip
    (tmp_path / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=tmp_path)  # fmt: skip
    trusted, empty = tmp_path / "trusted", tmp_path / "empty"
    trusted.mkdir()
    empty.mkdir()
    shutil.copy(tmp_path / "ca.pem", trusted / "ca.pem")
    subprocess.run(["openssl", "rehash", str(trusted)], check=True, capture_output=True)
    (empty / "00000000.0").write_text("")  # hashed, but holding no CA of this server
    server = subprocess.Popen(
        ["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", "server.pem", "-key", "server.key",
         "-www", "-naccept", "3"], cwd=tmp_path, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        port = next(line.split(":")[-1].strip() for line in server.stdout if line.startswith("ACCEPT"))
        url = f"https://127.0.0.1:{port}/"

        def fetch(ca_dir: Path, ca_file: Path | None = None) -> str:
            env = {"PATH": "/usr/bin:/bin", "SSL_CERT_DIR": str(ca_dir), "PYTHONPATH": str(Path.cwd())}
            if ca_file is not None:
                env["SSL_CERT_FILE"] = str(ca_file)
            run = subprocess.run(
                [sys.executable, "-c", CLIENT, url], env=env, capture_output=True, text=True, timeout=60
            )
            return run.stdout.strip() or run.stderr

        assert fetch(trusted) == "200"
        assert fetch(empty) == "refused"
        assert fetch(empty, tmp_path / "ca.pem") == "200"  # an operator's own CA file is kept
    finally:
        server.kill()
        server.wait(timeout=10)
