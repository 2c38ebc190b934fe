//! A tool: its MCP definition, its handler, and what Wharf enforces around it.
//!
//! Handlers come in two forms. `ToolSpec::new(..).handler(..)` receives the raw
//! JSON arguments and declares its schema by hand (config-defined tools, the
//! gateway); `ToolSpec::typed::<Args>(..)` derives the schema from a Rust type and
//! hands the handler a deserialized value. Either way the arguments are validated
//! against the published schema before the handler runs.

use std::{future::Future, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{context::CallContext, error::ToolError};

/// The boxed handler every tool is stored as.
pub(crate) type ToolFn = Arc<
    dyn Fn(CallContext, JsonObject) -> BoxFuture<'static, Result<CallToolResponse, ToolError>>
        + Send
        + Sync,
>;

/// A tool definition plus its handler, built with chained setters.
#[derive(Clone)]
pub struct ToolSpec {
    pub(crate) tool: Tool,
    pub(crate) handler: ToolFn,
    pub(crate) timeout: Option<Duration>,
    pub(crate) security: Vec<crate::SecurityScheme>,
}

impl std::fmt::Debug for ToolSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolSpec")
            .field("name", &self.tool.name)
            .finish()
    }
}

fn empty_object_schema() -> JsonObject {
    let mut schema = JsonObject::new();
    schema.insert("type".into(), Value::String("object".into()));
    schema
}

impl ToolSpec {
    /// A tool taking no arguments until `input_schema` says otherwise. Its handler
    /// must be set with [`ToolSpec::handler`].
    pub fn new(name: impl Into<String>) -> Self {
        let name: String = name.into();
        let missing = name.clone();
        Self {
            tool: Tool::new(name, "", Arc::new(empty_object_schema())),
            handler: Arc::new(move |_, _| {
                let missing = missing.clone();
                Box::pin(async move {
                    Err(ToolError::Failed(format!(
                        "tool `{missing}` has no handler"
                    )))
                })
            }),
            timeout: None,
            security: Vec::new(),
        }
        .without_description()
    }

    /// A tool whose arguments are the Rust type `A`; the input schema is derived
    /// from it (JSON Schema 2020-12, with the bounds its `schemars` attributes give).
    pub fn typed<A, F, Fut, R>(name: impl Into<String>, handler: F) -> Self
    where
        A: DeserializeOwned + schemars::JsonSchema + Send + 'static,
        F: Fn(CallContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ToolError>> + Send + 'static,
        R: Into<CallToolResponse>,
    {
        let handler = Arc::new(handler);
        Self::new(name)
            .input_schema(schema_of::<A>())
            .handler(move |ctx, args| {
                let handler = handler.clone();
                async move {
                    let typed: A = serde_json::from_value(Value::Object(args))
                        .map_err(|e| ToolError::invalid("", e.to_string()))?;
                    handler(ctx, typed).await
                }
            })
    }

    /// A tool with a complete MCP definition given as is: annotations, output
    /// schema and `_meta` included (a gateway republishing an upstream's tool).
    /// Its handler must be set with [`ToolSpec::handler`].
    pub fn from_definition(tool: Tool) -> Self {
        let mut spec = Self::new(tool.name.to_string());
        spec.tool = tool;
        spec
    }

    /// Set the handler, which receives the validated JSON arguments.
    pub fn handler<F, Fut, R>(mut self, handler: F) -> Self
    where
        F: Fn(CallContext, JsonObject) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ToolError>> + Send + 'static,
        R: Into<CallToolResponse>,
    {
        self.handler = Arc::new(move |ctx, args| {
            let fut = handler(ctx, args);
            Box::pin(async move { fut.await.map(Into::into) })
        });
        self
    }

    fn without_description(mut self) -> Self {
        self.tool.description = None;
        self
    }

    pub fn name(&self) -> &str {
        &self.tool.name
    }

    /// The MCP definition as clients see it.
    pub fn definition(&self) -> &Tool {
        &self.tool
    }

    /// Whether the input schema has an `x-mcp-header` anywhere (computed once
    /// per offer: [`ResolvedTool::mirrors_arguments_in_headers`](crate::ResolvedTool::mirrors_arguments_in_headers)).
    pub(crate) fn mirrors_arguments_in_headers(&self) -> bool {
        fn walk(v: &Value) -> bool {
            match v {
                Value::Object(o) => o.iter().any(|(k, v)| k == "x-mcp-header" || walk(v)),
                Value::Array(a) => a.iter().any(walk),
                _ => false,
            }
        }
        self.tool
            .input_schema
            .iter()
            .any(|(k, v)| k == "x-mcp-header" || walk(v))
    }

    /// What the tool does and when to use it; models choose tools by this text.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.tool.description = Some(description.into().into());
        self
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.tool.title = Some(title.into());
        self
    }

    /// The JSON Schema of the arguments. Must be an object schema. Published
    /// (and enforced) in its portable form (`portable_schema`).
    pub fn input_schema(mut self, schema: JsonObject) -> Self {
        self.tool.input_schema = Arc::new(crate::portable_schema::portable(schema));
        self
    }

    /// The JSON Schema of `structuredContent` in successful results, published
    /// in its portable form.
    pub fn output_schema(mut self, schema: JsonObject) -> Self {
        self.tool.output_schema = Some(Arc::new(crate::portable_schema::portable(schema)));
        self
    }

    /// Derive the output schema from a Rust type.
    pub fn output<T: schemars::JsonSchema>(self) -> Self {
        self.output_schema(schema_of::<T>())
    }

    pub fn annotations(mut self, annotations: ToolAnnotations) -> Self {
        self.tool.annotations = Some(annotations);
        self
    }

    /// Mark the tool read-only and idempotent, closed-world: it only reads data
    /// this server holds.
    pub fn read_only(self) -> Self {
        let mut a = self.tool.annotations.clone().unwrap_or_default();
        a.read_only_hint = Some(true);
        a.destructive_hint = Some(false);
        a.idempotent_hint = Some(true);
        a.open_world_hint = Some(false);
        self.annotations(a)
    }

    /// Add one `_meta` entry to the tool definition (widget and security metadata).
    pub fn meta(mut self, key: impl Into<String>, value: Value) -> Self {
        let mut meta = self.tool.meta.take().unwrap_or_default();
        meta.0.insert(key.into(), value);
        self.tool.meta = Some(meta);
        self
    }

    /// Who may call this tool: `NoAuth` and/or `OAuth2 { scopes }`. Published in
    /// `_meta.securitySchemes` and enforced before the handler runs.
    pub fn security(mut self, schemes: Vec<crate::SecurityScheme>) -> Self {
        let published: Vec<Value> = schemes.iter().map(crate::SecurityScheme::to_json).collect();
        self.security = schemes;
        self.meta("securitySchemes", Value::Array(published))
    }

    /// The longest the handler may run before the call answers with a timeout error.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// The JSON Schema of `T` as a JSON object.
pub fn schema_of<T: schemars::JsonSchema>() -> JsonObject {
    let schema = schemars::schema_for!(T);
    match serde_json::to_value(schema) {
        Ok(Value::Object(map)) => map,
        _ => empty_object_schema(),
    }
}

/// A successful result whose only content is `text`.
pub fn text_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text.into())])
}

/// A successful result with `structuredContent` (what a model and a widget read)
/// and a short `text` for clients that only show content.
pub fn structured_result(
    value: &impl Serialize,
    text: impl Into<String>,
) -> Result<CallToolResult, ToolError> {
    let value = serde_json::to_value(value).map_err(ToolError::internal)?;
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text.into())];
    Ok(result)
}
