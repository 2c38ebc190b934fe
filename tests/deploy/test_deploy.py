"""Every deployment file, checked by the tool that reads it (or its schema), and
its Wharf settings checked by Wharf itself (`wharf check` with the file's env).

hadolint (Dockerfiles), the Compose Specification schema (docker-compose.yml,
deploy/compose), kubernetes-validate --strict (deploy/k8s, deploy/k8s-gateway,
the Helm chart as `helm template` renders it, after `helm lint --strict`),
systemd-analyze verify and security (deploy/systemd), nginx -t (deploy/nginx),
the Cloud Run Admin API's `Service` schema (deploy/cloudrun), botocore's ECS and
App Runner request shapes (deploy/aws), the Container Apps models of
azure-mgmt-appcontainers (deploy/azure), cfn-lint (deploy/aws/lambda), promtool
(deploy/prometheus, and the queries of deploy/grafana), `make -n` (Makefile).
fly.toml and render.yaml have no offline validator; they are parsed and their
env, port and probe paths are checked against what Wharf serves. Every
validator has a test that breaks a copy of a file and sees it fail.

nginx, systemd-analyze, openssl and promtool come from Debian packages
(.ci/run installs them), helm from npm (xtask, TEST_HELM), the rest from PyPI
(xtask).
"""

import copy
import json
import os
import pathlib
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request

import pytest
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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serves_on_port(argv, env, port, tmp_path) -> bool:
    """Start `argv` with PORT set as a platform does; True when /health answers there."""
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


def deployment_files() -> list[pathlib.Path]:
    """Every file that sets or names Wharf settings for a deployment, and the guide."""
    deploy = ROOT / "deploy"
    files = [ROOT / "Dockerfile", ROOT / "docker-compose.yml", ROOT / "fly.toml", ROOT / "render.yaml",
             ROOT / ".env.example", ROOT / "Makefile", ROOT / "docs/deploy.md"]
    for pattern in ("**/*.yaml", "**/*.yml", "**/*.json", "**/*.conf", "**/*.env", "**/*.service",
                    "**/*.tpl", "**/*.txt", "**/Dockerfile"):
        files += deploy.glob(pattern)
    return sorted(set(files))


def test_every_wharf_variable_in_a_deployment_file_is_a_real_key():
    keys = set(re.findall(r"`(WHARF_[A-Z_]+)`", run(WHARF_BIN, "config-reference").stdout))
    assert keys, "config-reference lists the variables"
    files = deployment_files()
    assert ROOT / ".env.example" in files and CLOUD_RUN in files and HELM_CHART / "values.yaml" in files
    for f in files:
        for var in re.findall(r"\b(WHARF_[A-Z_]+)\b", f.read_text()):
            assert var in keys, f"{f.relative_to(ROOT)} sets {var}, which is not a Wharf setting"


YAMLLINT_CONFIG = ("{extends: default, rules: {line-length: {max: 120}, document-start: disable, "
                   "comments: {min-spaces-from-content: 1}}}")


def test_yaml_files_are_lint_clean():
    # The Helm chart's templates are Go templates, not YAML: `helm lint` checks them.
    files = [ROOT / "docker-compose.yml", ROOT / "render.yaml",
             *(p for p in (ROOT / "deploy").rglob("*.y*ml") if "templates" not in p.parts)]
    assert CLOUD_RUN in files and PROMETHEUS_RULES in files
    r = run(BIN / "yamllint", "-d", YAMLLINT_CONFIG, *files)
    assert r.returncode == 0, r.stdout + r.stderr


def copy_with(path: pathlib.Path, tmp_path, old: str, new: str) -> pathlib.Path:
    """A copy of `path` in tmp_path with `old` (which must occur) replaced by `new`."""
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path.name}"
    out = tmp_path / path.name
    out.write_text(text.replace(old, new))
    return out


# --- Google Cloud Run ---------------------------------------------------------

CLOUD_RUN = ROOT / "deploy/cloudrun/service.yaml"


def cloud_run_schema() -> dict:
    """The Cloud Run Admin API v1 `Service` (what `gcloud run services replace`
    sends), as JSON Schema made from the discovery document google-api-python-client
    ships. Discovery schemas say nothing about extra keys; here an object with
    declared properties takes no other, so a misspelt or misplaced key fails
    instead of being dropped on the way."""
    import googleapiclient
    path = pathlib.Path(googleapiclient.__file__).parent / "discovery_cache/documents/run.v1.json"
    doc = json.loads(path.read_text())

    def convert(s: dict) -> dict:
        if "$ref" in s:
            return {"$ref": "#/definitions/" + s["$ref"]}
        out = {k: s[k] for k in ("type", "enum") if k in s}
        if "properties" in s:
            out["properties"] = {k: convert(v) for k, v in s["properties"].items()}
            out["additionalProperties"] = False
        elif "additionalProperties" in s:
            out["additionalProperties"] = convert(s["additionalProperties"])
        if "items" in s:
            out["items"] = convert(s["items"])
        return out

    return {"$ref": "#/definitions/Service", "definitions": {n: convert(s) for n, s in doc["schemas"].items()}}


def cloud_run_errors(path: pathlib.Path) -> list[str]:
    import jsonschema
    validator = jsonschema.Draft7Validator(cloud_run_schema())
    service = yaml.safe_load(path.read_text())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(service)]


def test_cloud_run_service_matches_the_cloud_run_api():
    assert cloud_run_errors(CLOUD_RUN) == []
    service = yaml.safe_load(CLOUD_RUN.read_text())
    assert (service["apiVersion"], service["kind"]) == ("serving.knative.dev/v1", "Service")


def test_the_cloud_run_schema_would_catch_a_mistake(tmp_path):
    typo = copy_with(CLOUD_RUN, tmp_path, "livenessProbe:", "livenesProbe:")
    assert any("livenesProbe" in e for e in cloud_run_errors(typo))
    (tmp_path / "t").mkdir()
    wrong_type = copy_with(CLOUD_RUN, tmp_path / "t", "timeoutSeconds: 3600", 'timeoutSeconds: "an hour"')
    assert any("is not of type 'integer'" in e for e in cloud_run_errors(wrong_type))


def test_cloud_run_service_is_a_valid_wharf_configuration(tmp_path):
    service = yaml.safe_load(CLOUD_RUN.read_text())
    spec = service["spec"]["template"]["spec"]
    c = spec["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    secret = {e["name"] for e in c["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert {"MCP_API_KEY", "WHARF_DATABASE", "WHARF_STATE_KEY"} <= secret, "secrets come from Secret Manager"
    # Cloud Run sets PORT (to containerPort) and refuses it in env; WHARF_LISTEN would win over it.
    assert "PORT" not in env and "WHARF_LISTEN" not in env
    port = c["ports"][0]["containerPort"]
    for probe in ("startupProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": port}
    assert spec["timeoutSeconds"] >= 3600, "SSE streams stay open as long as Cloud Run allows"
    seconds = lambda v: int(v.rstrip("s"))
    assert seconds(env["WHARF_DRAIN_DELAY"]) + seconds(env["WHARF_SHUTDOWN_GRACE"]) < 10, \
        "Cloud Run kills an instance 10 s after SIGTERM"
    plain = {k: v for k, v in env.items() if k not in secret}
    platform = {"PORT": str(port), "MCP_API_KEY": KEY, "WHARF_STATE_KEY": secrets.token_hex(32),
                "WHARF_DATABASE": "postgres://wharf:pw@localhost/wharf?host=/cloudsql/PROJECT_ID:europe-west1:wharf"}
    r = wharf_check({**dockerfile_env(), **plain, **platform}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


# --- AWS: ECS on Fargate, App Runner ------------------------------------------

ECS_TASK = ROOT / "deploy/aws/ecs-task-definition.json"
APP_RUNNER = ROOT / "deploy/aws/apprunner-service.json"


def aws_errors(path: pathlib.Path, service: str, operation: str) -> str:
    """botocore's own check of `path` as the input of `operation` (unknown keys,
    types, required members, ranges), plus the enums and patterns of the API
    model, which botocore leaves to the service."""
    import botocore.session
    import botocore.validate
    shape = botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape
    params = json.loads(path.read_text())
    report = botocore.validate.ParamValidator().validate(params, shape)
    errors = [report.generate_report()] if report.has_errors() else []

    def walk(value, s, where):
        if s.type_name == "structure" and isinstance(value, dict):
            for k, v in value.items():
                if k in s.members:
                    walk(v, s.members[k], f"{where}.{k}")
        elif s.type_name == "list" and isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, s.member, f"{where}[{i}]")
        elif s.type_name == "map" and isinstance(value, dict):
            for k, v in value.items():
                walk(v, s.value, f"{where}.{k}")
        elif s.type_name == "string" and isinstance(value, str):
            if s.enum and value not in s.enum:
                errors.append(f"{where}: {value!r} is not one of {s.enum}")
            pattern = s.metadata.get("pattern")
            if pattern and not re.fullmatch(pattern, value, re.S):
                errors.append(f"{where}: {value!r} does not match {pattern}")

    walk(params, shape, "$")
    return "\n".join(errors)


def test_ecs_task_definition_is_a_valid_register_task_definition_request():
    assert aws_errors(ECS_TASK, "ecs", "RegisterTaskDefinition") == ""


def test_app_runner_service_is_a_valid_create_service_request():
    assert aws_errors(APP_RUNNER, "apprunner", "CreateService") == ""


def test_the_aws_models_would_catch_a_mistake(tmp_path):
    unknown = copy_with(ECS_TASK, tmp_path, '"healthCheck"', '"healthcheck"')
    assert 'Unknown parameter in containerDefinitions[0]: "healthcheck"' in aws_errors(unknown, "ecs", "RegisterTaskDefinition")
    (tmp_path / "t").mkdir()
    wrong_type = copy_with(ECS_TASK, tmp_path / "t", '"stopTimeout": 45', '"stopTimeout": "45"')
    assert "Invalid type for parameter containerDefinitions[0].stopTimeout" in aws_errors(wrong_type, "ecs", "RegisterTaskDefinition")
    (tmp_path / "e").mkdir()
    enum = copy_with(ECS_TASK, tmp_path / "e", '"logDriver": "awslogs"', '"logDriver": "aws-logs"')
    assert "'aws-logs' is not one of" in aws_errors(enum, "ecs", "RegisterTaskDefinition")
    pattern = copy_with(APP_RUNNER, tmp_path, '"Cpu": "1 vCPU"', '"Cpu": "1 CPU"')
    assert "'1 CPU' does not match" in aws_errors(pattern, "apprunner", "CreateService")


def test_ecs_task_definition_is_a_valid_wharf_configuration(tmp_path):
    task = json.loads(ECS_TASK.read_text())
    c = task["containerDefinitions"][0]
    env = {e["name"]: e["value"] for e in c["environment"]}
    secret = {s["name"]: s["valueFrom"] for s in c["secrets"]}
    assert all(v.startswith("arn:aws:secretsmanager:") for v in secret.values())
    assert task["requiresCompatibilities"] == ["FARGATE"]
    assert c["logConfiguration"]["logDriver"] == "awslogs"
    assert c["healthCheck"]["command"] == ["CMD", "/usr/local/bin/wharf", "health"], "no shell in the image"
    assert c["portMappings"][0]["containerPort"] == int(dockerfile_env()["PORT"])
    seconds = lambda v: int(v.rstrip("s"))
    assert c["stopTimeout"] > seconds(env["WHARF_DRAIN_DELAY"]) + seconds(env["WHARF_SHUTDOWN_GRACE"])
    assert c["stopTimeout"] <= 120, "Fargate's longest stop timeout"
    assert c["readonlyRootFilesystem"] is True and c["user"] == "65532:65532"
    filled = {"MCP_API_KEY": KEY, "WHARF_STATE_KEY": secrets.token_hex(32),
              "WHARF_DATABASE": "postgres://wharf:pw@wharf.abc.eu-west-1.rds.amazonaws.com:5432/wharf",
              "WHARF_REDIS_URL": "rediss://wharf.abc.cache.amazonaws.com:6379"}
    assert set(filled) == set(secret)
    r = wharf_check({**dockerfile_env(), **env, **filled, "WHARF_DATA_DIR": str(tmp_path)}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_app_runner_service_is_a_valid_wharf_configuration(tmp_path):
    service = json.loads(APP_RUNNER.read_text())
    image = service["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]
    env = image["RuntimeEnvironmentVariables"]
    assert all(v.startswith("arn:aws:secretsmanager:") for v in image["RuntimeEnvironmentSecrets"].values())
    assert image["Port"] == dockerfile_env()["PORT"] and "WHARF_LISTEN" not in env
    assert service["HealthCheckConfiguration"]["Path"] == "/health"
    filled = {"MCP_API_KEY": KEY, "WHARF_STATE_KEY": secrets.token_hex(32),
              "WHARF_DATABASE": "postgres://wharf:pw@wharf.abc.eu-west-1.rds.amazonaws.com:5432/wharf"}
    assert set(filled) == set(image["RuntimeEnvironmentSecrets"])
    r = wharf_check({**dockerfile_env(), **env, **filled, "WHARF_DATA_DIR": str(tmp_path)}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


# --- AWS Lambda (SAM, Lambda Web Adapter) -------------------------------------

LAMBDA = ROOT / "deploy/aws/lambda"


def cfn_lint(path: pathlib.Path) -> subprocess.CompletedProcess:
    return run(BIN / "cfn-lint", path)


def lambda_as_cloudformation(template: dict) -> dict:
    """The CloudFormation `sam deploy` makes of the template's function, for the
    properties SAM hands to CloudFormation unchanged. cfn-lint checks a SAM
    function against SAM's schema, where these are pass-through: here
    CloudFormation's own schemas for AWS::Lambda::Function and AWS::Lambda::Url
    check them (ranges, enums). A SAM-only property this does not know fails
    as unknown to AWS::Lambda::Function, not silently."""
    out = copy.deepcopy(template)
    del out["Transform"]
    resources = out["Resources"]
    resources["WharfFunctionRole"] = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                       "Action": "sts:AssumeRole"}]}}}
    fn = resources["WharfFunction"]
    assert fn["Type"] == "AWS::Serverless::Function"
    props = dict(fn["Properties"])
    url = props.pop("FunctionUrlConfig")
    # `sam build` pushes the image and writes its URI into the template it deploys.
    props["Code"] = {"ImageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wharf-lambda:latest"}
    props["Role"] = {"Fn::GetAtt": ["WharfFunctionRole", "Arn"]}
    resources["WharfFunction"] = {"Type": "AWS::Lambda::Function", "Properties": props}
    resources["WharfFunctionUrl"] = {"Type": "AWS::Lambda::Url",
                                     "Properties": {**url, "TargetFunctionArn": {"Ref": "WharfFunction"}}}
    return out


def cfn_yaml_load(text: str) -> dict:
    """YAML with CloudFormation's short-form tags (!Sub, !Ref, ...) as their long form."""
    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, suffix, node):
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    Loader.add_multi_constructor("!", construct)
    return yaml.load(text, Loader=Loader)


def test_lambda_template_passes_cfn_lint(tmp_path):
    r = cfn_lint(LAMBDA / "template.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    expanded = tmp_path / "expanded.json"
    expanded.write_text(json.dumps(lambda_as_cloudformation(cfn_yaml_load((LAMBDA / "template.yaml").read_text()))))
    r = cfn_lint(expanded)
    assert r.returncode == 0, r.stdout + r.stderr


def test_cfn_lint_would_catch_a_mistake(tmp_path):
    template = LAMBDA / "template.yaml"
    r = cfn_lint(copy_with(template, tmp_path, "MemorySize:", "MemmorySize:"))
    assert r.returncode != 0 and "MemmorySize" in r.stdout, r.stdout
    for old, new, message in [("InvokeMode: RESPONSE_STREAM", "InvokeMode: STREAM", "'STREAM' is not one of"),
                              ("Timeout: 900", "Timeout: 1000", "1000 is greater than the maximum of 900")]:
        bad = cfn_yaml_load(template.read_text().replace(old, new))
        expanded = tmp_path / "expanded.json"
        expanded.write_text(json.dumps(lambda_as_cloudformation(bad)))
        r = cfn_lint(expanded)
        assert r.returncode != 0 and message in r.stdout, r.stdout


def test_lambda_dockerfile_passes_hadolint():
    r = run(BIN / "hadolint", LAMBDA / "Dockerfile")
    assert r.returncode == 0, r.stdout + r.stderr


def test_lambda_function_is_a_valid_wharf_configuration(tmp_path):
    template = cfn_yaml_load((LAMBDA / "template.yaml").read_text())
    props = template["Resources"]["WharfFunction"]["Properties"]
    env = props["Environment"]["Variables"]
    assert env["AWS_LWA_PORT"] == env["PORT"] and env["AWS_LWA_READINESS_CHECK_PATH"] == "/health"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream" and props["FunctionUrlConfig"]["InvokeMode"] == "RESPONSE_STREAM"
    assert env["WHARF_STATELESS"] == "true", "instances share nothing: no legacy sessions"
    assert env["WHARF_DATA_DIR"].startswith("/tmp/"), "/tmp is Lambda's only writable place"
    from_secrets = {k for k, v in env.items() if "resolve:secretsmanager" in json.dumps(v)}
    assert from_secrets == {"MCP_API_KEY", "WHARF_STATE_KEY"}
    plain = {k: v for k, v in env.items() if k not in from_secrets and not k.startswith("AWS_LWA_")}
    plain["WHARF_DATA_DIR"] = str(tmp_path / "wharf")
    filled = {**dockerfile_env(), **plain, "MCP_API_KEY": KEY, "WHARF_STATE_KEY": secrets.token_hex(32)}
    r = wharf_check(filled, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # And the adapter's view: with that env, Wharf answers the readiness path on AWS_LWA_PORT.
    assert serves_on_port([WHARF_BIN, "serve"], filled, free_port(), tmp_path)


# --- Azure Container Apps -----------------------------------------------------

CONTAINER_APP = ROOT / "deploy/azure/containerapp.yaml"


def container_app_errors(data: dict) -> list[str]:
    """`data` walked against azure-mgmt-appcontainers' ContainerApp model: every
    key must be a field (by its REST name) of the model at that place, not
    read-only, of the field's type (enums: one of the known values, compared as
    the service does, case-insensitively), and every required field present.
    The package's models are typed Python classes (azure.core's model_base,
    no msrest `_attribute_map`), so the walk reads their field tables and type
    hints."""
    import enum
    import inspect
    import typing
    from azure.mgmt.appcontainers import models
    from azure.mgmt.appcontainers._utils import model_base

    errors: list[str] = []

    def fields(cls):
        cls.__new__(cls)  # a model computes its field table when first made
        hints = typing.get_type_hints(cls, globalns={**vars(sys.modules[cls.__module__]), "_models": models})
        return {rf._rest_name: (attr, rf, hints.get(attr)) for attr, rf in cls._attr_to_rest_field.items()}

    def required(cls):
        overloads = typing.get_overloads(cls.__init__)
        if not overloads:
            return set()
        params = inspect.signature(overloads[0]).parameters.values()
        return {p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty}

    def check(t, value, where):
        origin, args = typing.get_origin(t), typing.get_args(t)
        if origin is typing.Union:
            options = [a for a in args if a is not type(None)]
            enums = [a for a in options if isinstance(a, type) and issubclass(a, enum.Enum)]
            if enums and isinstance(value, str):
                known = {m.value.lower(): m.value for e in enums for m in e}
                if value.lower() not in known:
                    errors.append(f"{where}: {value!r} is not one of {sorted(known.values())}")
                return
            if len(options) == 1:
                return check(options[0], value, where)
            errors.append(f"{where}: {value!r} is not one of the types {options}")
        elif origin is list:
            if not isinstance(value, list):
                errors.append(f"{where}: {value!r} is not a list")
                return
            for i, v in enumerate(value):
                check(args[0], v, f"{where}[{i}]")
        elif origin is dict:
            if not isinstance(value, dict):
                errors.append(f"{where}: {value!r} is not a mapping")
                return
            for k, v in value.items():
                check(args[1], v, f"{where}.{k}")
        elif isinstance(t, type) and issubclass(t, model_base.Model):
            walk(t, value, where)
        elif t is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                errors.append(f"{where}: {value!r} is not a number")
        elif isinstance(t, type):
            if isinstance(value, bool) != (t is bool) or not isinstance(value, t):
                errors.append(f"{where}: {value!r} is not a {t.__name__}")
        else:
            errors.append(f"{where}: no check for the type {t}")

    def walk(cls, data, where):
        if not isinstance(data, dict):
            errors.append(f"{where}: {data!r} is not a mapping ({cls.__name__})")
            return
        f = fields(cls)
        for key, value in data.items():
            if key not in f:
                errors.append(f"{where}.{key}: not a field of {cls.__name__} ({', '.join(sorted(f))})")
            elif f[key][1]._visibility == ["read"]:
                errors.append(f"{where}.{key}: read-only in {cls.__name__}")
            else:
                check(f[key][2], value, f"{where}.{key}")
        for attr in required(cls):
            if cls._attr_to_rest_field[attr]._rest_name not in data:
                errors.append(f"{where}.{cls._attr_to_rest_field[attr]._rest_name}: required by {cls.__name__}")

    walk(models.ContainerApp, data, "$")
    return errors


def test_container_app_matches_the_container_apps_models():
    assert container_app_errors(yaml.safe_load(CONTAINER_APP.read_text())) == []


def test_the_container_apps_models_would_catch_a_mistake():
    app = yaml.safe_load(CONTAINER_APP.read_text())
    bad = copy.deepcopy(app)
    bad["properties"]["template"]["containers"][0]["probes"][0]["periodSecond"] = 2
    bad["properties"]["configuration"]["ingress"]["transport"] = "htp"
    bad["properties"]["configuration"]["ingress"]["targetPort"] = "8000"
    bad["properties"]["template"]["containers"][0]["env"][0]["secretref"] = "x"
    del bad["location"]
    errors = "\n".join(container_app_errors(bad))
    assert "probes[0].periodSecond: not a field of ContainerAppProbe" in errors
    assert "ingress.transport: 'htp' is not one of" in errors
    assert "ingress.targetPort: '8000' is not a int" in errors
    assert "env[0].secretref: not a field of EnvironmentVar" in errors
    assert "$.location: required by ContainerApp" in errors


def test_container_app_is_a_valid_wharf_configuration(tmp_path):
    app = yaml.safe_load(CONTAINER_APP.read_text())
    props = app["properties"]
    c = props["template"]["containers"][0]
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    refs = {e["name"]: e["secretRef"] for e in c["env"] if "secretRef" in e}
    assert set(refs.values()) == {s["name"] for s in props["configuration"]["secrets"]}
    assert all("keyVaultUrl" in s for s in props["configuration"]["secrets"]), "secrets come from Key Vault"
    port = int(dockerfile_env()["PORT"])
    assert props["configuration"]["ingress"]["targetPort"] == port and "WHARF_LISTEN" not in env
    probes = {p["type"]: p["httpGet"] for p in c["probes"]}
    assert probes == {"Startup": {"path": "/health", "port": port}, "Liveness": {"path": "/health", "port": port},
                      "Readiness": {"path": "/ready", "port": port}}
    seconds = lambda v: int(v.rstrip("s"))
    assert props["template"]["terminationGracePeriodSeconds"] > \
        seconds(env["WHARF_DRAIN_DELAY"]) + seconds(env["WHARF_SHUTDOWN_GRACE"])
    filled = {"MCP_API_KEY": KEY, "WHARF_STATE_KEY": secrets.token_hex(32),
              "WHARF_DATABASE": "postgres://wharf:pw@wharf.postgres.database.azure.com:5432/wharf?sslmode=require"}
    assert set(filled) == set(refs)
    r = wharf_check({**dockerfile_env(), **env, **filled, "WHARF_DATA_DIR": str(tmp_path)}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


# --- Helm chart -----------------------------------------------------------------

HELM_CHART = ROOT / "deploy/helm/wharf"


@pytest.fixture
def helm() -> str:
    """The helm binary xtask installs (TEST_HELM). In CI its absence is a failure;
    elsewhere these tests are skipped with the reason."""
    path = os.environ.get("TEST_HELM")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("TEST_HELM is not set: cargo xtask ci installs helm and sets it")
        pytest.skip("TEST_HELM is not set (cargo xtask ci installs helm and sets it)")
    return path


def helm_template(helm: str, chart: pathlib.Path, *args: str) -> list[dict]:
    r = run(helm, "template", "wharf", chart, *args)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def validate_rendered(docs: list[dict], tmp_path) -> subprocess.CompletedProcess:
    out = tmp_path / "rendered.yaml"
    out.write_text(yaml.safe_dump_all(docs))
    return run(BIN / "kubernetes-validate", "--strict", out)


def test_helm_chart_passes_helm_lint_strict(helm):
    r = run(helm, "lint", "--strict", HELM_CHART)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(helm, "lint", "--strict", HELM_CHART, "--set", "ingress.enabled=true", "--set", "autoscaling.enabled=true")
    assert r.returncode == 0, r.stdout + r.stderr


def test_helm_chart_renders_objects_that_validate_strictly(helm, tmp_path):
    for args in ((), ("--set", "ingress.enabled=true", "--set", "autoscaling.enabled=true")):
        docs = helm_template(helm, HELM_CHART, *args)
        r = validate_rendered(docs, tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.count("passed") == len(docs), r.stdout
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "PodDisruptionBudget", "Service"]


def test_helm_lint_and_strict_validation_would_catch_a_mistake(helm, tmp_path):
    chart = tmp_path / "wharf"
    shutil.copytree(HELM_CHART, chart)
    service = chart / "templates/service.yaml"
    good = service.read_text()
    service.write_text(good.replace("{{ .Values.service.port }}", "{{ .Values.service.port }"))
    assert run(helm, "lint", "--strict", chart).returncode != 0
    service.write_text(good.replace("targetPort: http", "targetPortt: http"))
    assert validate_rendered(helm_template(helm, chart), tmp_path).returncode != 0


def test_helm_chart_mirrors_the_plain_manifests(helm, tmp_path):
    """With its defaults the chart makes the pod deploy/k8s makes, and a
    configuration Wharf accepts once the Secret is filled in."""
    docs = {d["kind"]: d for d in helm_template(helm, HELM_CHART)}
    plain = yaml.safe_load((K8S / "deployment.yaml").read_text())
    chart_pod, plain_pod = docs["Deployment"]["spec"]["template"]["spec"], plain["spec"]["template"]["spec"]
    assert chart_pod == plain_pod
    assert docs["Deployment"]["spec"]["strategy"] == plain["spec"]["strategy"]
    assert docs["Deployment"]["spec"]["replicas"] == plain["spec"]["replicas"]
    plain_cm = yaml.safe_load((K8S / "configmap.yaml").read_text())["data"]
    assert docs["ConfigMap"]["data"] == plain_cm
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())["stringData"]
    env = {**docs["ConfigMap"]["data"], **secret, "MCP_API_KEY": KEY, "WHARF_STATE_KEY": secrets.token_hex(32)}
    r = wharf_check(env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


# --- The gateway: Compose and Kubernetes, mcp.json from a config/ConfigMap ------

COMPOSE_GATEWAY = ROOT / "deploy/compose/gateway.yml"
K8S_GATEWAY = ROOT / "deploy/k8s-gateway"


def test_compose_gateway_file_matches_the_compose_spec():
    r = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE_GATEWAY)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_compose_schema_check_would_catch_a_mistake_in_the_gateway_file(tmp_path):
    bad = copy_with(COMPOSE_GATEWAY, tmp_path, "configs:\n      - source:", "config:\n      - source:")
    assert run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", bad).returncode != 0


def compose_env(service: dict, values: dict[str, str]) -> dict[str, str]:
    """A service's environment with ${VAR:?...} and ${VAR:-default} filled from `values`."""
    def fill(v: str) -> str:
        return re.sub(r"\$\{(\w+)(?::[?-][^}]*)?\}", lambda m: values[m.group(1)], str(v))
    return {k: fill(v) for k, v in service["environment"].items()}


def gateway_upstreams_for_here(text: str, catalog_url: str, **catalog_fields) -> str:
    """An upstream file as shipped, with the catalog's in-network URL pointed at
    `catalog_url` (and `catalog_fields` set on it), and the image's
    /usr/local/bin/wharf at the binary under test."""
    data = json.loads(text)
    for s in data["servers"]:
        if s.get("url"):
            s.update(url=catalog_url, **catalog_fields)
        if s.get("command") == "/usr/local/bin/wharf":
            s["command"] = WHARF_BIN
    return json.dumps(data)


def test_compose_gateway_is_a_valid_wharf_configuration(tmp_path):
    compose = yaml.safe_load(COMPOSE_GATEWAY.read_text())
    services = compose["services"]
    config = compose["configs"][services["gateway"]["configs"][0]["source"]]
    upstreams = COMPOSE_GATEWAY.parent / config["file"]
    keys = {"MCP_API_KEY": KEY, "CATALOG_API_KEY": secrets.token_hex(32)}
    catalog = compose_env(services["catalog"], keys)
    r = wharf_check({**dockerfile_env(), **catalog, "WHARF_DATA_DIR": str(tmp_path)}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    gateway = compose_env(services["gateway"], keys)
    assert gateway["WHARF_GATEWAY_UPSTREAMS"] == services["gateway"]["configs"][0]["target"]
    assert services["gateway"]["command"] == ["gateway"]
    # The catalog's Host check accepts the name the gateway calls it by.
    url = json.loads(upstreams.read_text())["servers"][0]["url"]
    assert url.split("/")[2].split(":")[0] in catalog["WHARF_ALLOWED_HOSTS"].split(",")
    mounted = tmp_path / "mcp.json"
    mounted.write_text(gateway_upstreams_for_here(upstreams.read_text(), url))
    # The command `gateway` is `serve --profile gateway`: checked as such, the upstream file is read.
    env = {**dockerfile_env(), **gateway, "WHARF_PROFILE": "gateway", "WHARF_GATEWAY_UPSTREAMS": str(mounted),
           "WHARF_DATA_DIR": str(tmp_path)}
    r = wharf_check(env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # Without the catalog's key in the environment, the upstream file is refused.
    del env["CATALOG_API_KEY"]
    r = wharf_check(env, tmp_path)
    assert r.returncode != 0 and "CATALOG_API_KEY" in r.stderr, r.stderr


def k8s_gateway_files():
    return sorted(p for p in K8S_GATEWAY.glob("*.yaml") if p.name != "kustomization.yaml")


def test_kubernetes_gateway_manifests_validate_strictly():
    r = run(BIN / "kubernetes-validate", "--strict", *k8s_gateway_files())
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("passed") == len(k8s_gateway_files()), r.stdout
    k = yaml.safe_load((K8S_GATEWAY / "kustomization.yaml").read_text())
    for resource in k["resources"]:
        assert (K8S_GATEWAY / resource).is_file(), resource


def test_kubernetes_validation_would_catch_a_mistake_in_the_gateway(tmp_path):
    bad = copy_with(K8S_GATEWAY / "deployment.yaml", tmp_path, "readOnly: true", "readonly: true")
    assert run(BIN / "kubernetes-validate", "--strict", bad).returncode != 0


def test_kubernetes_gateway_mounts_a_valid_upstream_file(tmp_path):
    deployment = yaml.safe_load((K8S_GATEWAY / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["args"] == ["gateway"]
    cm = yaml.safe_load((K8S_GATEWAY / "configmap.yaml").read_text())["data"]
    upstreams = yaml.safe_load((K8S_GATEWAY / "upstreams.yaml").read_text())
    # The file Wharf reads is the ConfigMap's key, where the volume puts it.
    mount = next(m for m in c["volumeMounts"] if m["name"] == "upstreams")
    volume = next(v for v in pod["volumes"] if v["name"] == "upstreams")
    assert volume["configMap"]["name"] == upstreams["metadata"]["name"]
    key = next(iter(upstreams["data"]))
    assert cm["WHARF_GATEWAY_UPSTREAMS"] == f"{mount['mountPath']}/{key}"
    # The catalog of deploy/k8s answers to the name the gateway calls it by.
    url = json.loads(upstreams["data"][key])["servers"][0]["url"]
    catalog_hosts = yaml.safe_load((K8S / "configmap.yaml").read_text())["data"]["WHARF_ALLOWED_HOSTS"]
    assert url.split("/")[2] in catalog_hosts.split(",")
    mounted = tmp_path / key
    mounted.write_text(gateway_upstreams_for_here(upstreams["data"][key], url))
    secret = yaml.safe_load((K8S_GATEWAY / "secret.example.yaml").read_text())["stringData"]
    # `wharf gateway` is `wharf serve --profile gateway`: checked as such, the upstream file is read.
    env = {**cm, **secret, "WHARF_PROFILE": "gateway", "WHARF_GATEWAY_UPSTREAMS": str(mounted)}
    # As shipped, the example Secret's keys are placeholders: refused.
    r = wharf_check(env, tmp_path)
    assert r.returncode != 0 and "placeholder text" in r.stderr, r.stderr
    filled = {"MCP_API_KEY": KEY, "CATALOG_API_KEY": secrets.token_hex(32), "WHARF_STATE_KEY": secrets.token_hex(32)}
    r = wharf_check({**env, **filled}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # Without the catalog's key in the environment, the upstream file is refused.
    without = {**env, **filled}
    del without["CATALOG_API_KEY"]
    r = wharf_check(without, tmp_path)
    assert r.returncode != 0 and "CATALOG_API_KEY" in r.stderr, r.stderr
    seconds = lambda v: int(v.rstrip("s"))
    assert pod["terminationGracePeriodSeconds"] > seconds(cm["WHARF_DRAIN_DELAY"]) + seconds(cm["WHARF_SHUTDOWN_GRACE"])


# --- Prometheus alert rules and the Grafana dashboard ---------------------------

PROMETHEUS_RULES = ROOT / "deploy/prometheus/wharf-alerts.yml"
PROMETHEUS_TESTS = ROOT / "deploy/prometheus/wharf-alerts.test.yml"
GRAFANA = ROOT / "deploy/grafana/wharf.json"
# Series the rules use that are not Wharf's: Prometheus's own scrape health, and
# blackbox_exporter's probe of /ready (Wharf exports no readiness series).
NOT_WHARF_SERIES = {"up", "probe_success"}


def test_alert_rules_pass_promtool_check():
    r = run("promtool", "check", "rules", PROMETHEUS_RULES)
    assert r.returncode == 0, r.stdout + r.stderr


def test_alert_rules_pass_their_promtool_unit_tests():
    r = run("promtool", "test", "rules", PROMETHEUS_TESTS)
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_would_catch_a_mistake(tmp_path):
    bad = copy_with(PROMETHEUS_RULES, tmp_path, "rate(wharf_shed_total[5m])", "rate(wharf_shed_total[5m)")
    assert run("promtool", "check", "rules", bad).returncode != 0
    # A rule that no longer does what its unit test says.
    (tmp_path / "t").mkdir()
    copy_with(PROMETHEUS_RULES, tmp_path / "t", "(wharf_upstream_breaker_state) == 2", "(wharf_upstream_breaker_state) == 1")
    shutil.copy(PROMETHEUS_TESTS, tmp_path / "t")
    assert run("promtool", "test", "rules", tmp_path / "t" / PROMETHEUS_TESTS.name).returncode != 0


def dashboard_queries() -> list[str]:
    dashboard = json.loads(GRAFANA.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def grafana_to_promql(expr: str) -> str:
    """A dashboard query as Prometheus sees it once Grafana has filled in its variables."""
    expr = expr.replace("$__rate_interval", "5m").replace("$job", "wharf").replace("$instance", ".*")
    # Grafana's label_values(...) is not PromQL; the selector inside it is.
    m = re.fullmatch(r"label_values\((.*), \w+\)", expr)
    return f"count({m.group(1)})" if m else expr


def check_queries(exprs: list[str], tmp_path) -> subprocess.CompletedProcess:
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(e)} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    return run("promtool", "check", "rules", path)


def test_grafana_dashboard_queries_are_valid_promql(tmp_path):
    dashboard = json.loads(GRAFANA.read_text())
    assert dashboard["uid"] == "wharf" and dashboard["title"] == "Wharf"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for p in dashboard["panels"]:
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"} and p["targets"], p["title"]
    exprs = dashboard_queries()
    r = check_queries(exprs, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in r.stdout, r.stdout


def test_the_dashboard_query_check_would_catch_a_mistake(tmp_path):
    exprs = dashboard_queries()
    exprs[0] = exprs[0].replace("sum by (status)", "sum by status")
    assert check_queries(exprs, tmp_path).returncode != 0


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression reads: every wharf_* name, and any other
    name written with a label selector (`up{...}`)."""
    return set(re.findall(r"\b(wharf_[a-z0-9_]+)\b", expr)) | set(re.findall(r"\b([a-z_][a-z0-9_]*)\{", expr))


def rule_exprs() -> list[str]:
    rules = yaml.safe_load(PROMETHEUS_RULES.read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def http(url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Running:
    """`wharf <args>` on a free loopback port (through PORT, as platforms set it),
    stopped at the end of the `with` block."""

    def __init__(self, args: list[str], env: dict[str, str], cwd, port: int | None = None):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        clean = {"PATH": os.environ["PATH"], **env, "PORT": str(self.port)}
        self.proc = subprocess.Popen([WHARF_BIN, *args], env=clean, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise AssertionError(self.log.read().decode())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                if http(f"{self.base}/health")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("wharf did not answer /health in 30 s")

    def __exit__(self, *_):
        self.stop()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


def scraped_series(base: str) -> set[str]:
    status, text = http(f"{base}/metrics")
    assert status == 200, text
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_every_series_the_rules_and_dashboard_use_is_one_wharf_exports(tmp_path):
    """Runs the Compose gateway topology here (catalog server, gateway with
    deploy/compose/mcp.json), makes each kind of event the rules watch happen
    (a tool call, a caller mistake, a query timeout, refused credentials, 429s,
    an upstream dying until its breaker opens, then coming back), scrapes both
    /metrics, and checks that every series the alerts and the dashboard read is
    there: a misspelt or renamed series fails here, not silently in Grafana."""
    catalog_key, gateway_key = secrets.token_hex(32), secrets.token_hex(32)
    catalog_env = {"MCP_API_KEY": catalog_key, "WHARF_DATA_DIR": str(tmp_path / "catalog"),
                   "WHARF_RATE_LIMIT_ANONYMOUS": "2", "WHARF_SQL_TIMEOUT": "50ms", "WHARF_ALLOWED_HOSTS": "127.0.0.1"}
    with Running(["serve"], catalog_env, tmp_path) as catalog:
        mcp = f"{catalog.base}/mcp"
        auth = {"authorization": f"Bearer {catalog_key}"}
        assert http(mcp, {"action": "call_tool", "name": "search_items", "arguments": {"query": "grid"}}, auth)[0] == 200
        assert http(mcp, {"action": "call_tool", "name": "search_items", "arguments": {"limit": "x"}}, auth)[0] == 400
        slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100000000) SELECT count(*) FROM c"
        http(mcp, {"action": "call_tool", "name": "execute_sql_query", "arguments": {"sql": slow}}, auth)
        refused = [http(mcp, {"action": "list_tools"}, {"authorization": "Bearer wrong"})[0] for _ in range(4)]
        assert 401 in refused and 429 in refused, refused

        upstreams = tmp_path / "mcp.json"
        # Health checks every second, so the reconnect below happens within the test.
        upstreams.write_text(gateway_upstreams_for_here((ROOT / "deploy/compose/mcp.json").read_text(), mcp,
                                                        health_check_interval=1))
        gateway_env = {"MCP_API_KEY": gateway_key, "CATALOG_API_KEY": catalog_key, "WHARF_PROFILE": "gateway",
                       "WHARF_GATEWAY_UPSTREAMS": str(upstreams), "WHARF_DATA_DIR": str(tmp_path / "gateway"),
                       "WHARF_ALLOWED_HOSTS": "127.0.0.1"}
        with Running(["gateway"], gateway_env, tmp_path) as gateway:
            gw_mcp, gw_auth = f"{gateway.base}/mcp", {"authorization": f"Bearer {gateway_key}"}
            call = {"action": "call_tool", "name": "catalog_search_items", "arguments": {"query": "grid"}}
            deadline = time.monotonic() + 30
            while http(gw_mcp, call, gw_auth)[0] != 200:
                assert time.monotonic() < deadline, "the gateway did not reach the catalog"
                time.sleep(0.2)
            server_series = scraped_series(catalog.base)
            catalog.stop()
            # The catalog is gone: calls fail, are retried, and open its breaker.
            for _ in range(8):
                http(gw_mcp, call, gw_auth)
            failing = scraped_series(gateway.base)
            # It comes back on the same address: the gateway's health check reconnects.
            with Running(["serve"], catalog_env, tmp_path, port=catalog.port):
                deadline = time.monotonic() + 30
                while "wharf_upstream_reconnects_total" not in scraped_series(gateway.base):
                    assert time.monotonic() < deadline, "the gateway did not reconnect to the catalog"
                    time.sleep(0.2)
                gateway_series = failing | scraped_series(gateway.base)
    exported = server_series | gateway_series
    assert "wharf_upstream_breaker_state" in gateway_series
    used = {name for e in rule_exprs() + dashboard_queries() for name in metric_names(e)}
    missing = sorted(used - exported - NOT_WHARF_SERIES)
    assert not missing, f"used by deploy/prometheus or deploy/grafana, but not on /metrics: {missing}"


def test_the_series_check_would_catch_a_misspelt_name():
    assert metric_names('sum(rate(wharf_request_total{status=~"5.."}[5m]))') == {"wharf_request_total"}
    assert metric_names("max by (upstream) (wharf_upstream_breaker_state) == 2") == {"wharf_upstream_breaker_state"}


# --- .env.example, nginx bootstrap, Makefile -----------------------------------

def test_env_example_is_read_by_wharf_and_refused_until_filled_in(tmp_path):
    # Wharf reads .env from its working directory: exactly what the file says to do.
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    r = wharf_check({"WHARF_DATA_DIR": str(tmp_path / "data")}, tmp_path)
    assert r.returncode != 0
    assert "MCP_API_KEY: API key `default` is placeholder text" in r.stderr, r.stderr
    text = (ROOT / ".env.example").read_text()
    (tmp_path / ".env").write_text(re.sub(r"(?m)^MCP_API_KEY=.*$", f"MCP_API_KEY={KEY}", text))
    r = wharf_check({"WHARF_DATA_DIR": str(tmp_path / "data")}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # The commented lines are real settings too, once uncommented and filled in.
    filled = re.sub(r"(?m)^# (WHARF_[A-Z_]+=)", r"\1", text)
    filled = re.sub(r"(?m)^(MCP_API_KEY|WHARF_STATE_KEY)=.*$", lambda m: f"{m.group(1)}={secrets.token_hex(32)}", filled)
    (tmp_path / ".env").write_text(filled)
    r = wharf_check({"WHARF_DATA_DIR": str(tmp_path / "data")}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


NGINX_BOOTSTRAP = ROOT / "deploy/nginx/wharf-bootstrap.conf"


def test_nginx_bootstrap_config_passes_nginx_t_without_certificates(tmp_path):
    text = NGINX_BOOTSTRAP.read_text()
    assert "ssl_certificate" not in text and "443" not in text, "nothing that needs a certificate yet"
    r = nginx_t(nginx_prefix(tmp_path, text))
    assert r.returncode == 0, r.stderr


def test_nginx_t_would_catch_a_mistake_in_the_bootstrap_config(tmp_path):
    text = NGINX_BOOTSTRAP.read_text().replace("root /var/www/acme;", "root /var/www/acme")
    assert nginx_t(nginx_prefix(tmp_path, text)).returncode != 0


def test_nginx_bootstrap_serves_the_acme_challenge_where_certbot_writes_it(tmp_path):
    """nginx with the bootstrap config, on a free port: a challenge file written
    under the webroot the guide gives certbot is served, the rest redirects to HTTPS."""
    deploy_md = (ROOT / "docs/deploy.md").read_text()
    webroot = re.search(r"certbot certonly --webroot -w (\S+)", deploy_md).group(1)
    text = NGINX_BOOTSTRAP.read_text()
    assert f"root {webroot};" in text and f"root {webroot};" in (ROOT / "deploy/nginx/wharf.conf").read_text()
    # nginx's workers run as nobody: the webroot must be readable by others, as /var/www is.
    here = pathlib.Path(tempfile.mkdtemp(prefix="acme-"))
    try:
        here.chmod(0o755)
        challenge = here / ".well-known/acme-challenge"
        challenge.mkdir(parents=True)
        (challenge / "token123").write_text("token123.thumbprint")
        for d in (here / ".well-known", challenge):
            d.chmod(0o755)
        (challenge / "token123").chmod(0o644)
        port = free_port()
        text = text.replace("listen 80;", f"listen 127.0.0.1:{port};").replace("listen [::]:80;", "")
        prefix = nginx_prefix(tmp_path, text.replace(f"root {webroot};", f"root {here};"))
        r = run("nginx", "-p", prefix, "-c", prefix / "nginx.conf", "-e", prefix / "error.log")
        assert r.returncode == 0, r.stderr
        try:
            host = {"host": "mcp.example.com"}
            deadline = time.monotonic() + 10
            while True:
                try:
                    status, body = http(f"http://127.0.0.1:{port}/.well-known/acme-challenge/token123", headers=host)
                    break
                except OSError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            assert (status, body) == (200, "token123.thumbprint"), (status, body, (prefix / "error.log").read_text())

            class NoRedirect(urllib.request.HTTPRedirectHandler):
                def redirect_request(self, *a, **kw):
                    return None

            req = urllib.request.Request(f"http://127.0.0.1:{port}/mcp", headers=host)
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.build_opener(NoRedirect).open(req, timeout=5)
            assert e.value.code == 301 and e.value.headers["location"] == "https://mcp.example.com/mcp"
        finally:
            subprocess.run(["kill", (prefix / "nginx.pid").read_text().strip()], check=True)
    finally:
        shutil.rmtree(here)


def test_deploy_guide_gets_a_certificate_before_loading_the_tls_config():
    text = (ROOT / "docs/deploy.md").read_text()
    bootstrap = text.index("wharf-bootstrap.conf /etc/nginx/conf.d/wharf.conf")
    certbot = text.index("certbot certonly --webroot")
    full = text.index("deploy/nginx/wharf.conf /etc/nginx/conf.d/wharf.conf")
    assert bootstrap < certbot < full
    assert text.index("nginx -t", bootstrap) < certbot, "the bootstrap config is checked and loaded first"


def make_n(*targets: str) -> list[str]:
    r = run("make", "-n", "-f", ROOT / "Makefile", *targets, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_makefile_targets_run_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    test_command = re.search(r"^(cargo xtask ci)\s+# run every test", readme, re.M).group(1)
    serve_command = re.search(r"^(cargo run --release -- serve)\s+#", readme, re.M).group(1)
    assert make_n("test") == [test_command]
    assert make_n("serve") == [serve_command]
    assert make_n("demo") == ["cargo run --release -- demo"]
    assert make_n("chat") == ["cargo run --release -- chat"], "the servers of config/mcp.json"
    url = "http://127.0.0.1:8000/mcp"
    r = run("make", "-n", "chat", f"URL={url}", cwd=ROOT)
    assert r.stdout.splitlines() == [f"cargo run --release -- chat --url {url}"]


def test_make_n_would_catch_a_mistake(tmp_path):
    bad = copy_with(ROOT / "Makefile", tmp_path, "\tcargo xtask ci", "\tcargo test")
    r = run("make", "-n", "-f", bad, "test", cwd=ROOT)
    assert r.stdout.splitlines() != ["cargo xtask ci"]
    r = run("make", "-n", "-f", bad, "lint", cwd=ROOT)
    assert r.returncode != 0 and "No rule to make target" in r.stderr
