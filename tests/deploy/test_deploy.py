"""Every deployment file, checked by the tool that reads it (or its schema), and
its Wharf settings checked by Wharf itself (`wharf check` with the file's env).

hadolint (Dockerfile), the Compose Specification schema (docker-compose.yml),
kubernetes-validate --strict (deploy/k8s), systemd-analyze verify and security
(deploy/systemd), nginx -t (deploy/nginx). fly.toml and render.yaml have no
offline validator; they are parsed and their env, port and probe paths are
checked against what Wharf serves. nginx, systemd-analyze and openssl come from
Debian packages (.ci/run installs them); the rest from PyPI (xtask).
"""

import os
import pathlib
import re
import secrets
import shutil
import subprocess
import sys
import tomllib

import yaml

# A key as the docs say to make one (`openssl rand -hex 32`).
KEY = secrets.token_hex(32)

ROOT = pathlib.Path(__file__).resolve().parents[2]
WHARF_BIN = os.path.abspath(os.environ.get("TEST_WHARF_BIN", str(ROOT / "target/debug/wharf")))
BIN = pathlib.Path(sys.executable).parent
K8S = ROOT / "deploy/k8s"


def run(*cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def wharf_check(env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    """`wharf check` with only `env` (plus PATH), in an empty directory."""
    clean = {"PATH": os.environ["PATH"], **env}
    return run(WHARF_BIN, "check", env=clean, cwd=tmp_path)


def test_dockerfile_passes_hadolint():
    r = run(BIN / "hadolint", ROOT / "Dockerfile")
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_runs_as_non_root_with_a_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 65532", text, re.M)
    assert "HEALTHCHECK" in text and '"health"' in text
    assert text.count("FROM ") == 2, "multi-stage: build, then the small runtime image"


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install curl\n")
    assert run(BIN / "hadolint", bad).returncode != 0


def test_compose_file_matches_the_compose_spec():
    r = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", ROOT / "docker-compose.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_compose_schema_check_would_catch_a_mistake(tmp_path):
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  wharf:\n    image: wharf\n    portz: ['8000:8000']\n")
    assert run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", bad).returncode != 0


def test_compose_environment_is_a_valid_wharf_configuration(tmp_path):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = dict(compose["services"]["wharf"]["environment"])
    env["MCP_API_KEY"] = KEY
    env = {k: re.sub(r"\$\{POSTGRES_PASSWORD:-(\w+)\}", r"\1", str(v)) for k, v in env.items()}
    # The image's own ENV (listen address, data dir) applies too.
    env.update(dockerfile_env())
    r = wharf_check(env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    line = next(l for l in text.splitlines() if l.startswith("ENV "))
    return dict(kv.split("=", 1) for kv in line[4:].split())


def k8s_files():
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def test_kubernetes_manifests_validate_strictly():
    r = run(BIN / "kubernetes-validate", "--strict", *k8s_files())
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("passed") == len(k8s_files()), r.stdout


def test_kubernetes_validation_would_catch_a_mistake(tmp_path):
    bad = tmp_path / "svc.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  portz: []\n")
    assert run(BIN / "kubernetes-validate", "--strict", bad).returncode != 0


def test_kustomization_lists_existing_manifests():
    k = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in k["resources"]:
        assert (K8S / resource).is_file(), resource


def test_kubernetes_deployment_probes_wharf_and_drains(tmp_path):
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert "preStop" in c["lifecycle"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    # The ConfigMap plus the example Secret is a configuration Wharf accepts, and
    # the grace period covers Wharf's drain delay plus its shutdown grace.
    cm = yaml.safe_load((K8S / "configmap.yaml").read_text())["data"]
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())["stringData"]
    env = {**cm, **secret, "WHARF_DATABASE": "sqlite://" + str(tmp_path / "w.db")}
    # As shipped, the example Secret holds placeholders: refused, both of them.
    r = wharf_check(env, tmp_path)
    assert r.returncode != 0
    assert "MCP_API_KEY: API key `default` is placeholder text" in r.stderr, r.stderr
    assert "WHARF_STATE_KEY (`server.state_key`): is placeholder text" in r.stderr, r.stderr
    # Filled in as its comment says, it is a configuration Wharf accepts.
    r = wharf_check({**env, "MCP_API_KEY": KEY, "WHARF_STATE_KEY": secrets.token_hex(32)}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    seconds = lambda v: int(v.rstrip("s"))
    assert pod["terminationGracePeriodSeconds"] > seconds(cm["WHARF_DRAIN_DELAY"]) + seconds(cm["WHARF_SHUTDOWN_GRACE"])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert cm["WHARF_LISTEN"].endswith(f":{ports['http']}")
    assert cm["WHARF_ADMIN_LISTEN"].endswith(f":{ports['admin']}")


def test_ingress_keeps_sse_streams_open():
    ingress = yaml.safe_load((K8S / "ingress.yaml").read_text())
    a = ingress["metadata"]["annotations"]
    assert a["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(a["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 15


def systemd_unit(tmp_path) -> pathlib.Path:
    """The unit with ExecStart pointing at a binary that exists here."""
    unit = tmp_path / "wharf.service"
    text = (ROOT / "deploy/systemd/wharf.service").read_text()
    unit.write_text(text.replace("/usr/local/bin/wharf", os.path.abspath(WHARF_BIN)))
    return unit


def test_systemd_unit_verifies_without_warnings(tmp_path):
    r = run("systemd-analyze", "verify", systemd_unit(tmp_path))
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


def test_systemd_unit_is_hardened(tmp_path):
    # Exposure 0 (locked down) .. 10 (unprotected); fail above 2.0.
    r = run("systemd-analyze", "security", "--offline=true", "--threshold=20", systemd_unit(tmp_path))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr


def test_systemd_verify_would_catch_a_mistake(tmp_path):
    bad = tmp_path / "bad.service"
    bad.write_text("[Service]\nExecStart=/bin/true\nKillSignal=SIGFOO\n")
    r = run("systemd-analyze", "verify", bad)
    assert r.stdout + r.stderr != ""


def test_systemd_environment_file_is_a_valid_wharf_configuration(tmp_path):
    env = {}
    for line in (ROOT / "deploy/systemd/wharf.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v
    env["WHARF_LOG_FILE"] = str(tmp_path / "logs/mcp.log")
    env["WHARF_DATA_DIR"] = str(tmp_path)
    # As shipped, its key is the template's placeholder: refused, saying how to make one.
    r = wharf_check(env, tmp_path)
    assert r.returncode != 0
    assert "MCP_API_KEY: API key `default` is placeholder text from a template" in r.stderr, r.stderr
    assert "openssl rand -hex 32" in r.stderr
    # With a key made as its comment says, it is a valid configuration.
    r = wharf_check({**env, "MCP_API_KEY": KEY}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def nginx_prefix(tmp_path, conf_text: str) -> pathlib.Path:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=mcp.example.com",
         "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True,
    )
    shutil.copy(ROOT / "deploy/nginx/wharf-proxy.conf", tmp_path)
    conf_text = conf_text.replace("/etc/letsencrypt/live/mcp.example.com/fullchain.pem", str(tmp_path / "cert.pem"))
    conf_text = conf_text.replace("/etc/letsencrypt/live/mcp.example.com/privkey.pem", str(tmp_path / "key.pem"))
    (tmp_path / "wharf.conf").write_text(conf_text)
    temp = "\n".join(f"    {d}_temp_path {tmp_path}/{d};" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n{temp}\n    include wharf.conf;\n}}\n"
    )
    return tmp_path


def nginx_t(prefix: pathlib.Path) -> subprocess.CompletedProcess:
    return run("nginx", "-t", "-p", prefix, "-c", prefix / "nginx.conf", "-e", prefix / "error.log")


def test_nginx_config_passes_nginx_t(tmp_path):
    r = nginx_t(nginx_prefix(tmp_path, (ROOT / "deploy/nginx/wharf.conf").read_text()))
    assert r.returncode == 0, r.stderr


def test_nginx_t_would_catch_a_mistake(tmp_path):
    text = (ROOT / "deploy/nginx/wharf.conf").read_text().replace("proxy_pass http://wharf;", "proxy_pass http://wharf")
    assert nginx_t(nginx_prefix(tmp_path, text)).returncode != 0


def test_nginx_proxy_settings_are_sse_safe():
    text = (ROOT / "deploy/nginx/wharf-proxy.conf").read_text()
    assert "proxy_buffering off;" in text
    assert "proxy_http_version 1.1;" in text
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", text).group(1))
    assert read_timeout > 15, "longer than Wharf's SSE keep-alive"
    assert "X-Forwarded-For" in text and "X-Forwarded-Proto" in text


def test_fly_toml_matches_wharf(tmp_path):
    fly = tomllib.loads((ROOT / "fly.toml").read_text())
    env = dict(fly["env"])
    assert env["WHARF_LISTEN"].endswith(f":{fly['http_service']['internal_port']}")
    assert fly["http_service"]["checks"][0]["path"] == "/ready"
    assert fly["mounts"][0]["destination"] == env["WHARF_DATA_DIR"]
    assert fly["kill_signal"] == "SIGTERM"
    env["WHARF_DATA_DIR"] = str(tmp_path)
    r = wharf_check({**env, "MCP_API_KEY": KEY}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_render_yaml_matches_wharf(tmp_path):
    render = yaml.safe_load((ROOT / "render.yaml").read_text())
    web = render["services"][0]
    assert web["healthCheckPath"] == "/ready"
    assert (ROOT / web["dockerfilePath"]).is_file()
    env = {e["key"]: e.get("value") for e in web["envVars"]}
    assert "MCP_API_KEY" in env and "WHARF_DATABASE" in env
    plain = {k: v for k, v in env.items() if v is not None}
    r = wharf_check({**plain, "MCP_API_KEY": KEY, "WHARF_DATA_DIR": str(tmp_path)}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serves_on_port(argv, env, port, tmp_path) -> bool:
    """Start `argv` with PORT set as a platform does; True when /health answers there."""
    import time
    import urllib.request
    proc = subprocess.Popen(argv, cwd=tmp_path, env={**os.environ, **env, "PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    return r.status == 200
            except OSError:
                time.sleep(0.1)
        return False
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_procfile_starts_wharf_on_the_platform_port(tmp_path):
    # Where the Rust buildpack leaves the binary: ./target/release (emk/heroku-buildpack-rust).
    line = (ROOT / "Procfile").read_text().strip()
    assert line == "web: ./target/release/wharf serve", line
    argv = line.removeprefix("web: ").replace("./target/release/wharf", WHARF_BIN).split()
    env = {"MCP_API_KEY": KEY, "WHARF_ALLOWED_HOSTS": "localhost", "WHARF_DATA_DIR": str(tmp_path)}
    assert serves_on_port(argv, env, free_port(), tmp_path)


def test_the_image_listens_on_the_platform_port(tmp_path):
    # The image's ENV and CMD, with the PORT a platform injects.
    env = {**dockerfile_env(), "MCP_API_KEY": KEY, "WHARF_ALLOWED_HOSTS": "localhost",
           "WHARF_DATA_DIR": str(tmp_path)}
    assert "WHARF_LISTEN" not in env, "WHARF_LISTEN in the image would win over the platform's PORT"
    text = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r'^CMD \[(.*)\]', text, re.M).group(1)
    argv = [WHARF_BIN] + [a.strip().strip('"') for a in cmd.split(",")]
    port = free_port()
    assert serves_on_port(argv, {**env, "PORT": str(port)}, port, tmp_path)


def test_every_wharf_variable_in_a_deployment_file_is_a_real_key():
    keys = set(re.findall(r"`(WHARF_[A-Z_]+)`", run(WHARF_BIN, "config-reference").stdout))
    assert keys, "config-reference lists the variables"
    files = [ROOT / "Dockerfile", ROOT / "docker-compose.yml", ROOT / "fly.toml", ROOT / "render.yaml",
             ROOT / "deploy/systemd/wharf.env", ROOT / "deploy/systemd/wharf.service", *k8s_files()]
    for f in files:
        for var in re.findall(r"\b(WHARF_[A-Z_]+)\b", f.read_text()):
            assert var in keys, f"{f.relative_to(ROOT)} sets {var}, which is not a Wharf setting"


def test_yaml_files_are_lint_clean():
    files = [ROOT / "docker-compose.yml", ROOT / "render.yaml", *K8S.rglob("*.yaml")]
    r = run(BIN / "yamllint", "-d", "{extends: default, rules: {line-length: {max: 120}, document-start: disable, comments: {min-spaces-from-content: 1}}}", *files)
    assert r.returncode == 0, r.stdout + r.stderr
