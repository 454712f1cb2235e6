"""The image stage through a second, TLS-only Docker Engine, as a remote builder would be used.

The test starts its own dockerd on tcp://127.0.0.1:<free port> with client-certificate TLS (a CA, a
server certificate for 127.0.0.1 and a client certificate, generated here), its own exec root and
pidfile under a temporary directory, no iptables or ip6tables rules, no IP forwarding or masquerading
change, and a bridge of its own (see own_bridge: ``--bridge=none`` is not used because dockerd then
deletes the host's docker0, which the machine's engine needs). It loads the base image into it, then drives image_build (once through
DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, once through module options), image_sbom and
container_smoke_test through it against the real PostgreSQL. At the end dockerd and its containerd
are stopped and nothing of them is left: no process, no mount, no directory but its data root.

The data root is a slow build kept outside the repository, as a remote builder keeps its own:
$VELOCITY_CACHE_DIR/tls-engine/data (one test at a time, by a lock that its dockerd holds too; a second one
gets a temporary data root). The app image is untagged at the start (its build cache kept, ``rmi --no-prune``), so the build
through TLS still runs, sends the whole context and tags a new image, but its steps come from the cache
of the last run unless the app changed: on a fresh machine the first run builds every step (50 s on a
quiet machine, over three minutes in a CI run's parallel pass), the next ones take seconds. A data root over TLS_CACHE_MAX_BYTES is
emptied first.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.docker import APP_IMAGE, ROOT, ansible_env
from tests.runner import CACHE_DIR

pytestmark = [pytest.mark.docker, pytest.mark.slow]
CANARY = "canary-Tls9RmQ4vXe2"
DOCKERD_START_TIMEOUT = 60
TLS_CACHE_MAX_BYTES = 4 * 1024**3  # the base image and the app's build cache take about 330 MiB


# -- TLS material ------------------------------------------------------------------------------------------
def make_tls_material(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, laid out as the Docker CLI
    expects (ca.pem, cert.pem, key.pem in the client dir); plus a second CA that signed nothing the engine trusts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ca(cn: str):
        k = key()
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn)).public_key(k.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
                .sign(k, hashes.SHA256()))
        return k, cert

    def leaf(ca_key, ca_cert, cn: str, usage, san=None):
        k = key()
        builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca_cert.subject)
                   .public_key(k.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return k, builder.sign(ca_key, hashes.SHA256())

    def write(path: Path, obj) -> Path:
        if hasattr(obj, "private_bytes"):
            data = obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        else:
            data = obj.public_bytes(serialization.Encoding.PEM)
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    import ipaddress

    ca_key, ca_cert = ca("velocity test engine CA")
    server_key, server_cert = leaf(ca_key, ca_cert, "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH,
                                   [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client_key, client_cert = leaf(ca_key, ca_cert, "velocity-client", ExtendedKeyUsageOID.CLIENT_AUTH)
    other_key, other_ca = ca("a CA the engine does not know")
    server_dir, client_dir, other_dir = directory / "server", directory / "client", directory / "other"
    for d in (server_dir, client_dir, other_dir):
        d.mkdir(mode=0o700)
    return {
        "server_ca": write(server_dir / "ca.pem", ca_cert),
        "server_cert": write(server_dir / "server-cert.pem", server_cert),
        "server_key": write(server_dir / "server-key.pem", server_key),
        "client_dir": client_dir,
        "ca": write(client_dir / "ca.pem", ca_cert),
        "cert": write(client_dir / "cert.pem", client_cert),
        "key": write(client_dir / "key.pem", client_key),
        "other_ca": write(other_dir / "ca.pem", other_ca),
        "other_ca_key": write(other_dir / "ca-key.pem", other_key),
    }


# -- the second engine -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return [line.split()[4] for line in handle if line.split()[4].startswith(prefix)]


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


@dataclass
class TlsEngine:
    host: str
    certs: dict[str, Path]
    root: Path

    def cli(self, *args: str) -> list[str]:
        return ["docker", "-H", self.host, "--tlsverify", "--tlscacert", str(self.certs["ca"]),
                "--tlscert", str(self.certs["cert"]), "--tlskey", str(self.certs["key"]), *args]

    def env(self) -> dict[str, str]:
        env = ansible_env()
        for var in ("DOCKER_CONTEXT", "DOCKER_CONFIG"):
            env.pop(var, None)
        return {**env, "DOCKER_HOST": self.host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(self.certs["client_dir"])}

    def tls_options(self) -> dict[str, object]:
        return {"docker_host": self.host, "validate_certs": True, "ca_path": str(self.certs["ca"]),
                "client_cert": str(self.certs["cert"]), "client_key": str(self.certs["key"])}


def _stop(proc: subprocess.Popen, root: Path, data: Path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    # dockerd stops the containerd it started; make sure, by pid file, never by name.
    for pidfile in (root / "exec" / "containerd" / "containerd.pid",):
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass
    for mount in sorted(set(mounts_under(root) + mounts_under(data)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)


def link_index(name: str) -> int | None:
    try:
        return int(Path(f"/sys/class/net/{name}/ifindex").read_text())
    except OSError:
        return None


@contextlib.contextmanager
def own_bridge(port: int):
    """A bridge interface for the test's dockerd alone, with a /29 of TEST-NET-2 (never routed), deleted after.

    dockerd 20.10 with ``--bridge=none`` calls removeDefaultBridgeInterface(), which deletes ``docker0`` by name
    from the host: the machine's own engine then fails every container on its default network. A bridge of its
    own, without iptables, forwarding or masquerading, keeps both engines apart.
    """
    name = f"vtls{port}"
    subnet = (port % 32) * 8
    address = f"198.51.100.{subnet + 1}/29"
    in_use = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    assert f"198.51.100.{subnet + 1}/" not in in_use, f"{address} is already on an interface; run the test again"
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", address, "dev", name], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def tree_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


@contextlib.contextmanager
def cached_data_root(fallback: Path):
    """($VELOCITY_CACHE_DIR/tls-engine/data, the descriptor of its lock), the lock held for this test; (``fallback``,
    None) when another holder has it. The test's dockerd inherits the descriptor: one left running by a killed run
    keeps the lock, and the next run takes a temporary data root instead of sharing this one with it."""
    cache = CACHE_DIR / "tls-engine"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "lock", "w", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield fallback, None
            return
        data = cache / "data"
        if data.is_dir() and not mounts_under(data) and tree_bytes(data) > TLS_CACHE_MAX_BYTES:
            shutil.rmtree(data)
        yield data, lock.fileno()


@pytest.fixture(scope="module")
def tls_engine(app_image):
    """A second dockerd, TLS client certificates required, on 127.0.0.1:<free port>; removed afterwards (its
    data root, the build cache, is kept: see the module's docstring)."""
    # Short path: containerd's socket under exec-root must fit in a unix socket address.
    root = Path(tempfile.mkdtemp(prefix="vtls-", dir="/tmp"))  # nosec B108 - private mkdtemp dir
    certs = make_tls_material(root)
    port = free_port()
    host = f"tcp://127.0.0.1:{port}"
    (root / "daemon.json").write_text("{}")
    docker0 = link_index("docker0")
    stack = contextlib.ExitStack()
    data, lock_fd = stack.enter_context(cached_data_root(root / "data"))
    bridge = stack.enter_context(own_bridge(port))
    log = open(root / "dockerd.log", "wb")
    proc = subprocess.Popen(
        ["dockerd", "--config-file", str(root / "daemon.json"), "-H", host,
         "--tlsverify", "--tlscacert", str(certs["server_ca"]), "--tlscert", str(certs["server_cert"]),
         "--tlskey", str(certs["server_key"]),
         "--data-root", str(data), "--exec-root", str(root / "exec"), "--pidfile", str(root / "dockerd.pid"),
         f"--bridge={bridge}", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, pass_fds=() if lock_fd is None else (lock_fd,),
    )
    engine = TlsEngine(host=host, certs=certs, root=root)
    try:
        deadline = time.monotonic() + DOCKERD_START_TIMEOUT
        while subprocess.run(engine.cli("version"), capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the test's dockerd did not answer:\n" + (root / "dockerd.log").read_text()[-3000:])
            time.sleep(0.5)
        # What an earlier run left in the kept data root: its containers (none, unless it was killed) and the
        # tags the tests gave (the build cache under them stays); the base image stays as it is.
        left = subprocess.run(engine.cli("ps", "-aq"), capture_output=True, text=True, check=True).stdout.split()
        if left:
            subprocess.run(engine.cli("rm", "-f", *left), capture_output=True, check=True)
        tags = subprocess.run(engine.cli("images", "--format", "{{.Repository}}:{{.Tag}}"), capture_output=True,
                              text=True, check=True).stdout.split()
        tags = [tag for tag in tags if "<none>" not in tag and not tag.startswith("velocity/base:")]
        if tags:
            subprocess.run(engine.cli("rmi", "--no-prune", *tags), capture_output=True, check=True)
        yield engine
    finally:
        _stop(proc, root, data)
        log.close()
        stack.close()
        leftovers = sorted(set(processes_mentioning(str(root)) + processes_mentioning(str(data))))
        mounts = sorted(set(mounts_under(root) + mounts_under(data)))
        shutil.rmtree(root, ignore_errors=True)
        assert not leftovers, f"processes of the test's dockerd survived: {leftovers}"
        assert not mounts, f"mounts of the test's dockerd survived: {mounts}"
        assert not root.exists(), f"{root} could not be removed"
        assert link_index(bridge) is None, f"the test's bridge {bridge} is still there"
        assert link_index("docker0") == docker0, "the machine's docker0 was deleted or replaced"


def base_image_ref() -> str:
    """The velocity/base tag the local app image was built on (its base-recipe label), else the newest."""
    recipe = subprocess.run(["docker", "inspect", "--format", '{{index .Config.Labels "velocity.dev/base-recipe"}}',
                             APP_IMAGE], capture_output=True, text=True, check=True).stdout.strip()
    tags = subprocess.run(["docker", "images", "velocity/base", "--format", "{{.Tag}}"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert tags, "no velocity/base image: the app_image fixture should have built it"
    matching = [tag for tag in tags if recipe and tag.rsplit("-", 1)[-1] and recipe.startswith(tag.rsplit("-", 1)[-1])]
    return f"velocity/base:{(matching or tags)[0]}"


def run_module(module: str, args: dict, env: dict[str, str]) -> tuple[int, dict, str]:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-m", f"velocity.platform.{module}",
         "-a", json.dumps(args)],
        cwd=ROOT, env={**env, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
                       "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.json"},
        capture_output=True, text=True, timeout=900,
    )
    try:
        doc = json.loads(proc.stdout)
        result = doc["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        result = {}
    return proc.returncode, result, proc.stdout[-3000:] + proc.stderr[-2000:]


def build_args(base: str) -> dict:
    return {"path": str(ROOT / "app"), "name": "velocity/app", "tag": "0.1.0", "target": "runtime",
            "build_args": {"BASE_IMAGE": base, "VERSION": "0.1.0", "REVISION": "test", "CREATED": "2026-12-02T00:00:00Z",
                           "SOURCE": "https://example.invalid/velocity/platform"}}


def test_image_is_built_sbomed_and_smoke_tested_through_a_tls_engine(tls_engine, postgres, fresh_database, tmp_path):
    base = base_image_ref()
    local_id = subprocess.run(["docker", "inspect", "--format", "{{.Id}}", base], capture_output=True, text=True,
                              check=True).stdout.strip()
    there = subprocess.run(tls_engine.cli("inspect", "--format", "{{.Id}}", base), capture_output=True, text=True)
    if there.stdout.strip() != local_id:  # not loaded by an earlier run into the kept data root
        save = subprocess.Popen(["docker", "save", base], stdout=subprocess.PIPE)
        load = subprocess.run(tls_engine.cli("load"), stdin=save.stdout, capture_output=True, text=True, timeout=300)
        save.stdout.close()
        assert save.wait(timeout=60) == 0 and load.returncode == 0, load.stderr

    # 1. Through the environment, as docker-py and the Docker CLI read it; nothing on the local engine changes.
    env = tls_engine.env()
    rc, result, out = run_module("image_build", build_args(base), env)
    assert rc == 0, out
    assert result["built"] is True and result["changed"] is True
    remote_id = result["image"]["id"]
    listed = subprocess.run(tls_engine.cli("images", "--no-trunc", "--format", "{{.ID}}", "velocity/app:0.1.0"),
                            capture_output=True, text=True, check=True).stdout.split()
    assert listed == [remote_id]

    # 2. Through module options only: the environment names no engine, and the image is current there.
    plain_env = {k: v for k, v in env.items() if not k.startswith("DOCKER_")}
    rc, result, out = run_module("image_build", {**build_args(base), **tls_engine.tls_options()}, plain_env)
    assert rc == 0, out
    assert result["built"] is False and result["changed"] is False and result["image"]["id"] == remote_id

    # 3. SBOM from the TLS engine's image.
    dest = tmp_path / "app.cdx.json"
    rc, result, out = run_module("image_sbom", {"image": "velocity/app:0.1.0", "dest": str(dest)}, env)
    assert rc == 0, out
    doc = json.loads(dest.read_text())
    props = {p["name"]: p["value"] for p in doc["metadata"]["properties"]}
    assert props["velocity.dev/image-id"] == remote_id
    assert {"flask", "gunicorn", "velocity-app"} <= set(result["python_packages"])

    # 4. Smoke test on that engine, against the real PostgreSQL (host network: that engine has no bridge).
    app_env = {"SECRET_KEY": CANARY + "-0123456789", "DATABASE_URL": postgres.url(database=fresh_database)}
    rc, result, out = run_module("container_smoke_test", {"image": "velocity/app:0.1.0", "env": app_env,
                                                         "migrate": True, "network_mode": "host"}, env)
    assert rc == 0, out
    assert result["checks"]["readyz"] == 200 and result["checks"]["docker_health"] == "healthy"
    assert result["checks"]["uid"] == 10001
    assert CANARY not in out
    left = subprocess.run(tls_engine.cli("ps", "-aq"), capture_output=True, text=True, check=True).stdout.split()
    assert left == []


def test_a_client_without_the_client_certificate_is_refused_clearly(tls_engine, tmp_path):
    plain = {k: v for k, v in ansible_env().items() if not k.startswith("DOCKER_")}
    rc, result, out = run_module("image_sbom", {"image": "velocity/app:0.1.0", "dest": str(tmp_path / "x.json"),
                                                "docker_host": tls_engine.host, "validate_certs": True,
                                                "ca_path": str(tls_engine.certs["ca"])}, plain)
    assert rc != 0
    msg = result.get("msg", out)
    print(msg)  # shown with -rA: the message an operator reads
    assert tls_engine.host in msg and "refused the client certificate" in msg and "client_cert" in msg, msg


def test_an_engine_certificate_from_an_unknown_ca_names_the_ca_to_check(tls_engine, tmp_path):
    plain = {k: v for k, v in ansible_env().items() if not k.startswith("DOCKER_")}
    opts = {**tls_engine.tls_options(), "ca_path": str(tls_engine.certs["other_ca"])}
    rc, result, out = run_module("image_sbom", {"image": "velocity/app:0.1.0", "dest": str(tmp_path / "x.json"), **opts}, plain)
    assert rc != 0
    msg = result.get("msg", out)
    print(msg)  # shown with -rA: the message an operator reads
    assert tls_engine.host in msg and str(tls_engine.certs["other_ca"]) in msg and "CA" in msg, msg


def test_plain_http_to_the_tls_engine_says_to_turn_tls_on(tls_engine, tmp_path):
    plain = {k: v for k, v in ansible_env().items() if not k.startswith("DOCKER_")}
    rc, result, out = run_module("image_sbom", {"image": "velocity/app:0.1.0", "dest": str(tmp_path / "x.json"),
                                                "docker_host": tls_engine.host}, plain)
    assert rc != 0
    msg = result.get("msg", out)
    print(msg)  # shown with -rA: the message an operator reads
    assert tls_engine.host in msg and "TLS is off" in msg, msg


def test_a_docker_context_made_by_the_cli_reaches_the_tls_engine(tls_engine, tmp_path):
    """The context layout is the CLI's own: `docker context create` writes it, the modules read it."""
    config = tmp_path / "docker-config"
    certs = tls_engine.certs
    subprocess.run(["docker", "--config", str(config), "context", "create", "tls-builder", "--docker",
                    f"host={tls_engine.host},ca={certs['ca']},cert={certs['cert']},key={certs['key']}"],
                   check=True, capture_output=True)
    context_dir = tmp_path / "ctx"
    context_dir.mkdir()
    (context_dir / "Dockerfile").write_text("FROM scratch\nCOPY payload.txt /payload.txt\n")
    (context_dir / "payload.txt").write_text("built through a context\n")
    args = {"path": str(context_dir), "name": "velocity/context-probe", "tag": "t"}
    plain = {k: v for k, v in ansible_env().items() if not k.startswith("DOCKER_")}

    rc, result, out = run_module("image_build", args, {**plain, "DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "tls-builder"})
    assert rc == 0, out
    assert result["built"] is True
    listed = subprocess.run(tls_engine.cli("images", "-q", "velocity/context-probe:t"), capture_output=True, text=True,
                            check=True).stdout.split()
    assert len(listed) == 1

    # `docker context use` makes it current in config.json: found without DOCKER_CONTEXT, and the image is current.
    subprocess.run(["docker", "--config", str(config), "context", "use", "tls-builder"], check=True, capture_output=True)
    rc, result, out = run_module("image_build", args, {**plain, "DOCKER_CONFIG": str(config)})
    assert rc == 0, out
    assert result["built"] is False and result["changed"] is False
