//! Widgets: HTML a host renders in a sandboxed iframe next to a tool's result.
//!
//! A [`Widget`] is declared once and published in both dialects hosts read: the
//! MCP Apps extension (`ui://` resource with mimeType `text/html;profile=mcp-app`,
//! `_meta.ui.*`) and the OpenAI Apps SDK (`openai/*` keys). Hosts that only know
//! the older `text/html+skybridge` mimeType get the same HTML at a second URI,
//! [`Widget::skybridge_uri`], which is what `openai/outputTemplate` names; the
//! reasons are in docs/design/widgets.md. [`ToolSpec::widget`] links a tool to a
//! widget, [`ToolSpec::visibility`] hides a tool from the model (callable from the
//! widget only), and [`ToolSpec::invocation`] sets the status lines ChatGPT shows.

use std::sync::Arc;

use rmcp::model::{JsonObject, MetaObject, Resource, ResourceContents};
use serde_json::{Value, json};

use crate::{resource::ResourceSpec, tool::ToolSpec};

/// The MCP Apps mimeType of a widget resource.
pub const MCP_APP_MIME: &str = "text/html;profile=mcp-app";
/// The mimeType older Apps SDK hosts expect.
pub const SKYBRIDGE_MIME: &str = "text/html+skybridge";
/// ChatGPT shows at most this many characters of an invoking/invoked status line.
pub const MAX_INVOCATION_CHARS: usize = 64;

/// The origins a widget may reach beyond its own inline code. Empty lists mean
/// the host's strictest policy, which is what a self-contained widget wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WidgetCsp {
    /// Origins for fetch/XHR/WebSocket (`connect-src`).
    pub connect_domains: Vec<String>,
    /// Origins for images, fonts, scripts and styles.
    pub resource_domains: Vec<String>,
    /// Origins the widget may embed in its own iframes.
    pub frame_domains: Vec<String>,
    /// Origins allowed in `<base href>` (MCP Apps only).
    pub base_uri_domains: Vec<String>,
    /// Origins ChatGPT may open without its external-link confirmation (Apps SDK only).
    pub redirect_domains: Vec<String>,
}

impl WidgetCsp {
    /// Every origin listed, for checks that apply to all of them.
    pub fn all_domains(&self) -> impl Iterator<Item = &str> {
        self.connect_domains
            .iter()
            .chain(&self.resource_domains)
            .chain(&self.frame_domains)
            .chain(&self.base_uri_domains)
            .chain(&self.redirect_domains)
            .map(String::as_str)
    }
}

/// Who may call a tool: the model, the widget, or both (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// The model and the widget.
    ModelAndApp,
    /// Only the model; the widget may not call it.
    Model,
    /// Only the widget: hidden from the model (`openai/visibility: private`).
    App,
}

impl Visibility {
    fn ui_list(self) -> Value {
        match self {
            Visibility::ModelAndApp => json!(["model", "app"]),
            Visibility::Model => json!(["model"]),
            Visibility::App => json!(["app"]),
        }
    }
}

/// A widget: its `ui://` URI, its HTML and what its sandbox allows.
#[derive(Debug, Clone)]
pub struct Widget {
    uri: String,
    name: String,
    title: Option<String>,
    description: Option<String>,
    html: Arc<str>,
    csp: WidgetCsp,
    domain: Option<String>,
    prefers_border: bool,
}

impl Widget {
    /// A widget at `uri` (which must start with `ui://`; `AppBuilder::build` checks).
    pub fn new(uri: impl Into<String>, name: impl Into<String>, html: impl Into<Arc<str>>) -> Self {
        Self {
            uri: uri.into(),
            name: name.into(),
            title: None,
            description: None,
            html: html.into(),
            csp: WidgetCsp::default(),
            domain: None,
            prefers_border: false,
        }
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// What the widget shows; ChatGPT gives this to the model with the result
    /// (`openai/widgetDescription`), so the model does not repeat what is on screen.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    pub fn csp(mut self, csp: WidgetCsp) -> Self {
        self.csp = csp;
        self
    }

    /// The dedicated origin the host should serve the widget from (needed when the
    /// widget calls its own backend with cookies or OAuth).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Ask the host to draw a border around the widget.
    pub fn prefers_border(mut self, yes: bool) -> Self {
        self.prefers_border = yes;
        self
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn html(&self) -> &str {
        &self.html
    }

    pub fn csp_domains(&self) -> &WidgetCsp {
        &self.csp
    }

    /// The second URI, serving the same HTML as `text/html+skybridge`:
    /// `ui://x/card.html` → `ui://x/card.skybridge.html`.
    pub fn skybridge_uri(&self) -> String {
        match self.uri.strip_suffix(".html") {
            Some(stem) => format!("{stem}.skybridge.html"),
            None => format!("{}.skybridge", self.uri),
        }
    }

    /// The `_meta` both resources carry, in both dialects.
    pub fn resource_meta(&self) -> JsonObject {
        let mut ui = JsonObject::new();
        ui.insert(
            "csp".into(),
            json!({
                "connectDomains": self.csp.connect_domains,
                "resourceDomains": self.csp.resource_domains,
                "frameDomains": self.csp.frame_domains,
                "baseUriDomains": self.csp.base_uri_domains,
            }),
        );
        if let Some(d) = &self.domain {
            ui.insert("domain".into(), json!(d));
        }
        ui.insert("prefersBorder".into(), json!(self.prefers_border));

        let mut openai_csp = JsonObject::new();
        openai_csp.insert("connect_domains".into(), json!(self.csp.connect_domains));
        openai_csp.insert("resource_domains".into(), json!(self.csp.resource_domains));
        if !self.csp.frame_domains.is_empty() {
            openai_csp.insert("frame_domains".into(), json!(self.csp.frame_domains));
        }
        if !self.csp.redirect_domains.is_empty() {
            openai_csp.insert("redirect_domains".into(), json!(self.csp.redirect_domains));
        }

        let mut meta = JsonObject::new();
        meta.insert("ui".into(), Value::Object(ui));
        if let Some(d) = &self.description {
            meta.insert("openai/widgetDescription".into(), json!(d));
        }
        meta.insert(
            "openai/widgetPrefersBorder".into(),
            json!(self.prefers_border),
        );
        meta.insert("openai/widgetCSP".into(), Value::Object(openai_csp));
        if let Some(d) = &self.domain {
            meta.insert("openai/widgetDomain".into(), json!(d));
        }
        meta
    }

    /// The two resources that publish this widget: the MCP Apps one at
    /// [`Widget::uri`] and the skybridge one at [`Widget::skybridge_uri`].
    pub fn resources(&self) -> [ResourceSpec; 2] {
        [
            self.resource(self.uri.clone(), MCP_APP_MIME),
            self.resource(self.skybridge_uri(), SKYBRIDGE_MIME),
        ]
    }

    fn resource(&self, uri: String, mime: &str) -> ResourceSpec {
        let meta = MetaObject(self.resource_meta());
        let mut resource = Resource::new(uri.clone(), self.name.clone())
            .with_mime_type(mime)
            .with_meta(meta.clone());
        if let Some(t) = &self.title {
            resource = resource.with_title(t.clone());
        }
        if let Some(d) = &self.description {
            resource = resource.with_description(d.clone());
        }
        let contents = ResourceContents::text(self.html.to_string(), uri)
            .with_mime_type(mime)
            .with_meta(meta);
        ResourceSpec::fixed(resource, vec![contents])
    }
}

impl ToolSpec {
    /// Render this tool's results with `widget`, in every host, and let the widget
    /// call this tool. Register the widget with `AppBuilder::widget` too.
    pub fn widget(self, widget: &Widget) -> Self {
        let uri = widget.uri().to_owned();
        self.with_ui(|ui| {
            ui.insert("resourceUri".into(), json!(uri));
        })
        .meta("ui/resourceUri", json!(widget.uri()))
        .meta("openai/outputTemplate", json!(widget.skybridge_uri()))
        .visibility(Visibility::ModelAndApp)
    }

    /// Who may call this tool. `Visibility::App` hides it from the model, for
    /// tools only a widget should call.
    pub fn visibility(self, visibility: Visibility) -> Self {
        self.with_ui(|ui| {
            ui.insert("visibility".into(), visibility.ui_list());
        })
        .meta(
            "openai/visibility",
            json!(if visibility == Visibility::App {
                "private"
            } else {
                "public"
            }),
        )
        .meta(
            "openai/widgetAccessible",
            json!(visibility != Visibility::Model),
        )
    }

    /// The status lines ChatGPT shows while the tool runs and after it returns
    /// (at most [`MAX_INVOCATION_CHARS`] each; `wharf check --submission` checks).
    pub fn invocation(self, invoking: impl Into<String>, invoked: impl Into<String>) -> Self {
        self.meta("openai/toolInvocation/invoking", json!(invoking.into()))
            .meta("openai/toolInvocation/invoked", json!(invoked.into()))
    }

    /// The widget URI this tool renders with, if any (`_meta.ui.resourceUri`).
    pub fn widget_uri(&self) -> Option<&str> {
        self.tool
            .meta
            .as_ref()?
            .0
            .get("ui")?
            .get("resourceUri")?
            .as_str()
    }

    fn with_ui(mut self, edit: impl FnOnce(&mut JsonObject)) -> Self {
        let meta = self.tool.meta.get_or_insert_with(Default::default);
        let ui = meta
            .0
            .entry("ui")
            .or_insert_with(|| Value::Object(JsonObject::new()));
        if !ui.is_object() {
            *ui = Value::Object(JsonObject::new());
        }
        if let Value::Object(ui) = ui {
            edit(ui);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> Widget {
        Widget::new("ui://wharf/card.html", "card", "<p>hi</p>")
            .title("Card")
            .description("Shows one card.")
            .csp(WidgetCsp {
                connect_domains: vec!["https://api.example.com".into()],
                resource_domains: vec!["https://cdn.example.com".into()],
                redirect_domains: vec!["https://example.com".into()],
                ..Default::default()
            })
            .domain("https://card.example.com")
            .prefers_border(true)
    }

    fn meta_of(tool: &ToolSpec) -> Value {
        serde_json::to_value(&tool.definition().meta).unwrap()
    }

    #[test]
    fn skybridge_uri_sits_next_to_the_html_uri() {
        assert_eq!(card().skybridge_uri(), "ui://wharf/card.skybridge.html");
        let odd = Widget::new("ui://wharf/card", "card", "");
        assert_eq!(odd.skybridge_uri(), "ui://wharf/card.skybridge");
    }

    #[test]
    fn resources_carry_both_dialects_and_their_own_mime_types() {
        let [app, sky] = card().resources();
        assert_eq!(app.uri(), "ui://wharf/card.html");
        assert_eq!(app.definition().mime_type.as_deref(), Some(MCP_APP_MIME));
        assert_eq!(sky.uri(), "ui://wharf/card.skybridge.html");
        assert_eq!(sky.definition().mime_type.as_deref(), Some(SKYBRIDGE_MIME));
        for r in [&app, &sky] {
            let meta = serde_json::to_value(&r.definition().meta).unwrap();
            assert_eq!(
                meta["ui"],
                json!({
                    "csp": {
                        "connectDomains": ["https://api.example.com"],
                        "resourceDomains": ["https://cdn.example.com"],
                        "frameDomains": [],
                        "baseUriDomains": []
                    },
                    "domain": "https://card.example.com",
                    "prefersBorder": true
                })
            );
            assert_eq!(
                meta["openai/widgetCSP"],
                json!({
                    "connect_domains": ["https://api.example.com"],
                    "resource_domains": ["https://cdn.example.com"],
                    "redirect_domains": ["https://example.com"]
                })
            );
            assert_eq!(meta["openai/widgetDescription"], "Shows one card.");
            assert_eq!(meta["openai/widgetPrefersBorder"], true);
            assert_eq!(meta["openai/widgetDomain"], "https://card.example.com");
        }
    }

    #[tokio::test]
    async fn reading_a_widget_returns_the_html_with_the_same_meta() {
        let [app, _] = card().resources();
        let ctx = crate::CallContext::detached(Default::default());
        let read = (app.read)(ctx, app.uri().to_owned(), Default::default())
            .await
            .unwrap();
        let rmcp::model::ReadResourceResponse::Complete(read) = read else {
            panic!("a fixed resource answers at once");
        };
        let v = serde_json::to_value(read).unwrap();
        let c = &v["contents"][0];
        assert_eq!(c["uri"], "ui://wharf/card.html");
        assert_eq!(c["mimeType"], MCP_APP_MIME);
        assert_eq!(c["text"], "<p>hi</p>");
        assert_eq!(c["_meta"]["ui"]["prefersBorder"], true);
        assert_eq!(
            c["_meta"]["openai/widgetDomain"],
            "https://card.example.com"
        );
    }

    #[test]
    fn a_linked_tool_names_the_widget_in_every_key() {
        let t = ToolSpec::new("show")
            .widget(&card())
            .invocation("Showing…", "Shown");
        let m = meta_of(&t);
        assert_eq!(m["ui"]["resourceUri"], "ui://wharf/card.html");
        assert_eq!(m["ui"]["visibility"], json!(["model", "app"]));
        assert_eq!(m["ui/resourceUri"], "ui://wharf/card.html");
        assert_eq!(m["openai/outputTemplate"], "ui://wharf/card.skybridge.html");
        assert_eq!(m["openai/widgetAccessible"], true);
        assert_eq!(m["openai/visibility"], "public");
        assert_eq!(m["openai/toolInvocation/invoking"], "Showing…");
        assert_eq!(m["openai/toolInvocation/invoked"], "Shown");
        assert_eq!(t.widget_uri(), Some("ui://wharf/card.html"));
    }

    #[test]
    fn app_only_tools_are_hidden_from_the_model_in_both_dialects() {
        let t = ToolSpec::new("more")
            .widget(&card())
            .visibility(Visibility::App);
        let m = meta_of(&t);
        assert_eq!(m["ui"]["visibility"], json!(["app"]));
        assert_eq!(m["ui"]["resourceUri"], "ui://wharf/card.html");
        assert_eq!(m["openai/visibility"], "private");
        assert_eq!(m["openai/widgetAccessible"], true);

        let model_only = ToolSpec::new("x").visibility(Visibility::Model);
        let m = meta_of(&model_only);
        assert_eq!(m["ui"]["visibility"], json!(["model"]));
        assert_eq!(m["openai/widgetAccessible"], false);
        assert_eq!(m["openai/visibility"], "public");
    }

    #[test]
    fn the_app_refuses_a_tool_whose_widget_is_not_registered() {
        let err = crate::App::builder("t", "1")
            .tool(ToolSpec::new("show").widget(&card()))
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "tool `show` renders with widget `ui://wharf/card.html`, which is not registered: add it with AppBuilder::widget"
        );
        let ok = crate::App::builder("t", "1")
            .widget(&card())
            .tool(ToolSpec::new("show").widget(&card()))
            .build()
            .unwrap();
        assert_eq!(ok.offer().resources().count(), 2);
    }

    #[test]
    fn the_app_refuses_a_widget_outside_ui_scheme() {
        let err = crate::App::builder("t", "1")
            .widget(&Widget::new("https://x/card.html", "card", ""))
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "widget URI `https://x/card.html` must start with ui://"
        );
    }
}
