//! Native HTTPS: `wharf serve` with a certificate answers over TLS with HSTS,
//! picks up a renewed certificate on SIGHUP without dropping the listener, and
//! keeps the old one when the new files are bad. `--require-https` refuses plain
//! HTTP. Certificates are made with the openssl CLI, the client is rustls.

use std::{path::Path, process::Command, sync::Arc, time::Duration};

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::process::{BIN, free_port};

/// A self-signed certificate for localhost/127.0.0.1 in `dir/<name>.{crt,key}`.
fn make_cert(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // An end-entity certificate (webpki refuses a CA certificate as a server's).
        .args([
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("the TLS tests need the openssl command");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (crt, key)
}

fn der_of(crt: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(crt).unwrap().to_vec()
}

/// GET `path` over TLS trusting `ca`; the status line, the headers (lowercased) and the server's certificate.
async fn get(port: u16, ca: &Path, path: &str) -> std::io::Result<(String, String, Vec<u8>)> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    let peer = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await.ok();
    let (head, _) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    Ok((status.to_owned(), headers.to_ascii_lowercase(), peer))
}

/// Send SIGHUP (the certificate-reload signal) to `pid`.
fn hup(pid: &str) {
    assert!(
        Command::new("kill")
            .args(["-HUP", pid])
            .status()
            .unwrap()
            .success()
    );
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn https_with_hsts_and_a_certificate_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (crt_a, key_a) = make_cert(dir.path(), "a");
    let (crt_b, key_b) = make_cert(dir.path(), "b");
    let (live_crt, live_key) = (dir.path().join("live.crt"), dir.path().join("live.key"));
    std::fs::copy(&crt_a, &live_crt).unwrap();
    std::fs::copy(&key_a, &live_key).unwrap();
    let port = free_port();
    let child = Child(
        Command::new(BIN)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("WHARF_PROFILE", "builtin")
            .env("WHARF_LOG", "warn")
            .env("WHARF_TLS_CERT", &live_crt)
            .env("WHARF_TLS_KEY", &live_key)
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (status, headers, peer) = loop {
        let last = match get(port, &crt_a, "/health").await {
            Ok(r) => break r,
            Err(e) => e,
        };
        assert!(
            std::time::Instant::now() < deadline,
            "wharf did not answer over HTTPS: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(peer, der_of(&crt_a));
    let (status, headers_mcp, _) = get(port, &crt_a, "/mcp").await.unwrap();
    assert!(
        status.starts_with("HTTP/1.1 405") || status.starts_with("HTTP/1.1 4"),
        "{status}"
    );
    assert!(
        headers_mcp.contains("strict-transport-security: max-age=63072000"),
        "{headers_mcp}"
    );
    drop(headers);

    // A bad renewal is refused and the old certificate stays.
    std::fs::write(&live_crt, "not a certificate").unwrap();
    let pid = child.0.id().to_string();
    hup(&pid);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get(port, &crt_a, "/health").await.unwrap().2,
        der_of(&crt_a)
    );

    // A good renewal is picked up by new connections, without a restart.
    std::fs::copy(&crt_b, &live_crt).unwrap();
    std::fs::copy(&key_b, &live_key).unwrap();
    hup(&pid);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok((status, _, peer)) = get(port, &crt_b, "/health").await
            && peer == der_of(&crt_b)
        {
            assert_eq!(status, "HTTP/1.1 200 OK");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn require_https_refuses_plain_http_unless_a_trusted_proxy_says_https() {
    let dir = tempfile::tempdir().unwrap();
    let w = crate::process::Wharf::start_with_env(
        dir.path(),
        &[],
        &[
            ("WHARF_REQUIRE_HTTPS", "true"),
            ("WHARF_TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let post = |proto: Option<&'static str>| {
        let mut r = reqwest::Client::new()
            .post(w.url("/mcp"))
            .json(&serde_json::json!({"action": "list_tools"}));
        if let Some(p) = proto {
            r = r.header("x-forwarded-proto", p);
        }
        r.send()
    };
    let plain = post(None).await.unwrap();
    assert_eq!(plain.status(), 403);
    let body: serde_json::Value = plain.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("HTTPS is required")
    );
    let proxied = post(Some("https")).await.unwrap();
    assert_eq!(proxied.status(), 200);
    assert_eq!(
        proxied.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    // Probes stay reachable over plain HTTP inside the cluster.
    assert_eq!(reqwest::get(w.url("/health")).await.unwrap().status(), 200);
}
