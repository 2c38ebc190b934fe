//! Health checks on paused tokio time: an upstream in this process (over an
//! in-memory pipe, so no socket or child process makes time jump) is checked
//! exactly once per `health_check_interval`, hidden when a check times out, and
//! published again at the first check that passes.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        InitializeResult, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
        ServerConfig, Tool,
    },
    service::RequestContext,
};
use wharf_gateway::{
    Gateway, GatewayConfig, Health, InProcess, Transport, UpstreamConfig, WhenUnhealthy,
};

const INTERVAL: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(5);

/// An upstream that counts `tools/list` requests and can be told to leave
/// them unanswered.
#[derive(Clone, Default)]
struct Probe {
    lists: Arc<AtomicU32>,
    hang: Arc<AtomicBool>,
}

impl ServerHandler for Probe {
    fn get_info(&self) -> ServerConfig {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let schema = serde_json::json!({"type": "object"});
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            "ping",
            "answers",
            Arc::new(schema.as_object().cloned().unwrap_or_default()),
        )]))
    }
}

fn gateway(probe: &Probe) -> Arc<Gateway> {
    let served = probe.clone();
    let transport = Transport::InProcess(InProcess::new(move |stream| {
        let probe = served.clone();
        tokio::spawn(async move {
            if let Ok(running) = rmcp::service::serve_server(probe, stream).await {
                let _ = running.waiting().await;
            }
        });
    }));
    let mut up = UpstreamConfig::new("up", transport);
    up.health_check_interval = INTERVAL;
    up.timeout = TIMEOUT;
    let config = GatewayConfig {
        when_unhealthy: WhenUnhealthy::Hide,
        ..GatewayConfig::new(vec![up])
    };
    Arc::new(Gateway::new(config, "gateway", "1").unwrap())
}

/// Let every task that can run, run (time stays put).
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn an_upstream_is_checked_once_per_interval_hidden_when_a_check_fails_and_back_at_the_next() {
    let probe = Probe::default();
    let g = gateway(&probe);
    g.start().await;
    settle().await;
    let up = &g.upstreams()[0];
    assert_eq!(up.health(), Health::Healthy);
    assert!(g.app().offer().tool("up_ping").is_some());
    let lists = || probe.lists.load(Ordering::SeqCst);
    let at_start = lists();

    // Nothing before the interval is over; one check when it is.
    tokio::time::sleep(INTERVAL - Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(lists(), at_start, "no check before the interval");
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(lists(), at_start + 1, "one check at the interval");

    // Ten intervals, ten checks.
    tokio::time::sleep(INTERVAL * 10).await;
    settle().await;
    assert_eq!(lists(), at_start + 11);

    // The next check is not answered: after its timeout the upstream is
    // unhealthy and its tool hidden.
    probe.hang.store(true, Ordering::SeqCst);
    tokio::time::sleep(INTERVAL + TIMEOUT).await;
    settle().await;
    assert!(
        matches!(up.health(), Health::Unhealthy(_)),
        "{:?}",
        up.health()
    );
    assert!(g.app().offer().tool("up_ping").is_none(), "hidden");

    // Answered again: the next check finds it, and its tools come back.
    probe.hang.store(false, Ordering::SeqCst);
    tokio::time::sleep(INTERVAL).await;
    settle().await;
    assert_eq!(up.health(), Health::Healthy);
    assert!(g.app().offer().tool("up_ping").is_some(), "published again");
    g.shutdown().await;
}
