//! Running `wharf` as a child process, and stopping it the way an operator does.

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_wharf");

/// How long a server may take to answer /health after it is spawned.
const READY_DEADLINE: Duration = Duration::from_secs(20);

pub(crate) struct Wharf {
    pub child: Child,
    pub port: u16,
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Wharf {
    /// `wharf --data-dir DATA serve --listen 127.0.0.1:PORT ARGS...`, ready to serve.
    pub(crate) async fn start(data: &Path, args: &[&str]) -> Self {
        Self::start_with_env(data, args, &[]).await
    }

    pub(crate) async fn start_with_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(data, args, env, Stdio::inherit()).await
    }

    /// Like `start_with_env`, reading the configuration file `config`.
    pub(crate) async fn start_with_config(
        data: &Path,
        config: &Path,
        env: &[(&str, &str)],
    ) -> Self {
        let config = config.to_str().unwrap();
        Self::spawn_with(data, &["--config", config], &[], env, Stdio::inherit()).await
    }

    /// Like `start`, with stderr captured (read it after [`Wharf::terminate_keep`]).
    /// Global flags such as `--log-format` go in `args` before `serve` is added.
    pub(crate) async fn start_logged(data: &Path, global: &[&str]) -> Self {
        Self::spawn_with(data, global, &[], &[("WHARF_LOG", "info")], Stdio::piped()).await
    }

    /// `start_logged` with environment variables of the test's own.
    pub(crate) async fn start_logged_with_env(
        data: &Path,
        global: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut all = vec![("WHARF_LOG", "debug")];
        all.extend_from_slice(env);
        Self::spawn_with(data, global, &[], &all, Stdio::piped()).await
    }

    async fn spawn(data: &Path, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Self {
        Self::spawn_with(data, &[], args, env, stderr).await
    }

    async fn spawn_with(
        data: &Path,
        global: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Self {
        let port = free_port();
        let child = Command::new(BIN)
            .args(global)
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("WHARF_LOG", "warn")
            .env("WHARF_PROFILE", "builtin")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn wharf");
        let w = Self { child, port };
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Ok(r) = reqwest::get(w.url("/health")).await
                && r.status() == 200
            {
                return w;
            }
            assert!(
                Instant::now() < deadline,
                "wharf did not answer /health in time"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGTERM, wait for the exit, and return what the server wrote to stderr
    /// (started with [`Wharf::start_logged`]; a test's few log lines fit the pipe).
    pub(crate) fn terminate_with_stderr(mut self) -> String {
        let status = self.signal_and_wait();
        assert!(status.success(), "SIGTERM exits 0");
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
        }
        stderr
    }

    /// SIGTERM, then wait for the exit status.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        self.signal_and_wait()
    }

    fn signal_and_wait(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wharf did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Wharf {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
