//! Headers and body of a POST to `/mcp`, through the whole router: the Host and
//! Origin guard, CORS, load shedding, the auth gate (API key), JSON depth, the
//! action API and rmcp's Streamable HTTP service. Input: header lines
//! (`name: value`), a blank line, then the body. Nothing may panic or hang.

#![no_main]

use std::sync::{Arc, OnceLock};

use axum::{Router, body::Body};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use wharf_core::{App, ToolError, ToolSpec, text_result};
use wharf_http::{
    HttpConfig,
    auth::{ApiKey, AuthConfig},
    rate_limit::RateLimitConfig,
};

const KEY: &str = "fuzz-key-0123456789abcdef0123456789abcdef";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

fn router() -> Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER
        .get_or_init(|| {
            let schema = serde_json::json!({"type": "object", "properties": {"text": {"type": "string", "maxLength": 100}}, "required": ["text"]});
            let app = App::builder("fuzz", "1")
                .tool(
                    ToolSpec::new("echo")
                        .description("Echo")
                        .input_schema(schema.as_object().unwrap().clone())
                        .handler(|_, args| async move {
                            Ok::<_, ToolError>(text_result(args["text"].as_str().unwrap_or_default().to_owned()))
                        }),
                )
                .build()
                .unwrap();
            let config = HttpConfig {
                stateless: true,
                auth: AuthConfig {
                    api_keys: vec![ApiKey { name: "fuzz".into(), key: KEY.into() }],
                    oauth: None,
                    anonymous: true,
                },
                rate_limit: RateLimitConfig { enabled: false, ..Default::default() },
                ..Default::default()
            };
            let _guard = runtime().enter();
            wharf_http::build(Arc::new(app), &config).unwrap().router
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut request = http::Request::builder().method("POST").uri("/mcp").header("host", "localhost");
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(name), http::HeaderValue::from_bytes(value)) {
            request = request.header(n, v);
        }
    }
    let Ok(request) = request.body(Body::from(body.to_vec())) else { return };
    runtime().block_on(async {
        let Ok(response) = router().oneshot(request).await;
        // Read the answer whole, with a cap: a stream must end or be cut.
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            axum::body::to_bytes(response.into_body(), 1 << 20),
        )
        .await;
    });
});
