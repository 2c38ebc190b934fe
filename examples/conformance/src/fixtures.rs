//! The fixtures of the official MCP conformance suite, built with Wharf's own
//! library API. Names, contents and behaviours are the ones the suite's
//! scenarios ask for; see README.md. `requestState` is sealed by Wharf
//! (`CallContext::seal_state`), with `server.state_key` when it is set, so a
//! round trip continues on any replica.

// Sampling, logging and server-to-client requests are deprecated in 2026-07-28;
// the legacy scenarios still test them, so these fixtures use them on purpose.
#![allow(deprecated)]

use std::{sync::Arc, time::Duration};

use rmcp::{
    ErrorData,
    model::{
        AudioContent, ClientCapabilities, ContentBlock, CreateMessageRequestParams,
        ElicitRequestParams, GetPromptResponse, GetPromptResult, InputRequiredResult, LoggingLevel,
        LoggingMessageNotificationParam, ProgressNotificationParam, Prompt, PromptArgument,
        PromptMessage, Resource, ResourceContents, ResourceTemplate, Role, SamplingMessage,
    },
};
use serde_json::{Value, json};
use wharf_core::{
    App, AppError, CallContext, ListChange, PromptError, PromptSpec, ResourceSpec, TemplateSpec,
    ToolError, ToolSpec,
    rmcp::model::{CallToolResponse, CallToolResult, JsonObject, ReadResourceResult},
    text_result,
};

const IMAGE_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const AUDIO_WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/// The pause between the notifications of the logging and progress fixtures, as
/// the suite asks ("~50 ms"): it tests that clients see each one as it comes.
const FIXTURE_STEP: Duration = Duration::from_millis(50);

fn obj(v: Value) -> JsonObject {
    v.as_object().cloned().unwrap_or_default()
}

fn no_args() -> JsonObject {
    obj(json!({"type": "object", "properties": {}}))
}

fn input_required(v: Value) -> Result<CallToolResponse, ToolError> {
    let result: InputRequiredResult = serde_json::from_value(v).map_err(ToolError::internal)?;
    Ok(CallToolResponse::InputRequired(result))
}

fn elicit_name(key: &str, message: &str) -> Value {
    json!({ key: {
        "method": "elicitation/create",
        "params": {
            "message": message,
            "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
        }
    }})
}

/// The accepted content of the elicitation answer at `key`, if the client sent one.
fn accepted(ctx: &CallContext, key: &str) -> Option<JsonObject> {
    let answer = ctx.input_responses()?.get(key)?;
    if answer.get("action").and_then(Value::as_str) != Some("accept") {
        return None;
    }
    answer.get("content").and_then(Value::as_object).cloned()
}

fn client_caps(ctx: &CallContext) -> ClientCapabilities {
    ctx.client_capabilities().unwrap_or_default()
}

fn peer(ctx: &CallContext) -> Result<&rmcp::service::Peer<rmcp::RoleServer>, ToolError> {
    ctx.peer()
        .ok_or_else(|| ToolError::Failed("this tool needs an MCP client connection".into()))
}

/// The fixtures as one app.
pub(crate) fn app() -> Result<App, AppError> {
    let builder = App::builder("wharf-conformance", env!("CARGO_PKG_VERSION"))
        .instructions("Fixtures of the MCP conformance suite, served by Wharf.")
        .logging()
        .resource_subscriptions()
        .list_changed()
        .completion(Arc::new(|req| {
            let prefix = req.argument.value.to_lowercase();
            let values = ["paris", "park", "party", "test", "testing"]
                .into_iter()
                .filter(|v| v.starts_with(&prefix))
                .map(String::from)
                .collect();
            Box::pin(async move { Ok(values) })
        }));
    let builder = content_tools(builder);
    let builder = notification_tools(builder);
    let builder = client_request_tools(builder);
    let builder = mrtr_tools(builder);
    let builder = resources(builder);
    let builder = prompts(builder);
    builder.build()
}

fn content_tools(b: wharf_core::AppBuilder) -> wharf_core::AppBuilder {
    b.tool(
        ToolSpec::new("test_simple_text")
            .description("Tests simple text content response")
            .handler(|_, _| async { Ok::<_, ToolError>(text_result("This is a simple text response for testing.")) }),
    )
    .tool(
        ToolSpec::new("test_image_content")
            .description("Tests image content response")
            .handler(|_, _| async { Ok::<_, ToolError>(CallToolResult::success(vec![ContentBlock::image(IMAGE_PNG, "image/png")])) }),
    )
    .tool(ToolSpec::new("test_audio_content").description("Tests audio content response").handler(|_, _| async {
        Ok::<_, ToolError>(CallToolResult::success(vec![ContentBlock::Audio(AudioContent::new(AUDIO_WAV, "audio/wav"))]))
    }))
    .tool(ToolSpec::new("test_embedded_resource").description("Tests embedded resource content response").handler(|_, _| async {
        Ok::<_, ToolError>(CallToolResult::success(vec![ContentBlock::resource(
            ResourceContents::text("This is an embedded resource content.", "test://embedded-resource").with_mime_type("text/plain"),
        )]))
    }))
    .tool(
        ToolSpec::new("test_multiple_content_types")
            .description("Tests response with multiple content types (text, image, resource)")
            .handler(|_, _| async {
                Ok::<_, ToolError>(CallToolResult::success(vec![
                    ContentBlock::text("Multiple content types test:"),
                    ContentBlock::image(IMAGE_PNG, "image/png"),
                    ContentBlock::resource(
                        ResourceContents::text(r#"{"test":"data","value":123}"#, "test://mixed-content-resource")
                            .with_mime_type("application/json"),
                    ),
                ]))
            }),
    )
    .tool(ToolSpec::new("test_error_handling").description("Tests error response handling").handler(|_, _| async {
        Err::<CallToolResult, _>(ToolError::Failed("This tool intentionally returns an error for testing".into()))
    }))
    .tool(
        ToolSpec::new("json_schema_2020_12_tool")
            .description("Tool with JSON Schema 2020-12 features")
            .input_schema(obj(json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {"address": {"$anchor": "addressDef", "type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
                "properties": {
                    "name": {"type": "string"},
                    "address": {"$ref": "#/$defs/address"},
                    "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                    "phone": {"type": "string"},
                    "email": {"type": "string"}
                },
                "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
                "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
                "then": {"required": ["phone"]},
                "else": {"required": ["email"]},
                "additionalProperties": false
            })))
            .handler(|_, args| async move { Ok::<_, ToolError>(text_result(format!("Received: {}", Value::Object(args)))) }),
    )
    .tool(
        ToolSpec::new("test_custom_headers")
            .description("Echoes a parameter that clients mirror into the Mcp-Param-Region header")
            .input_schema(obj(json!({
                "type": "object",
                "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
                "required": ["region"]
            })))
            .handler(|_, args| async move {
                Ok::<_, ToolError>(text_result(format!("region={}", args.get("region").and_then(Value::as_str).unwrap_or(""))))
            }),
    )
}

fn notification_tools(b: wharf_core::AppBuilder) -> wharf_core::AppBuilder {
    let tools_changed = b.notifier();
    let prompts_changed = b.notifier();
    b.tool(
        ToolSpec::new("test_tool_with_logging")
            .description("Tests tool that emits log messages during execution")
            .input_schema(no_args())
            .handler(|ctx, _| async move {
                let peer = peer(&ctx)?;
                for (i, message) in ["Tool execution started", "Tool processing data", "Tool execution completed"].iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(FIXTURE_STEP).await;
                    }
                    let _ = peer
                        .notify_logging_message(LoggingMessageNotificationParam::new(LoggingLevel::Info, json!(message)).with_logger("conformance"))
                        .await;
                }
                Ok::<_, ToolError>(text_result("Tool with logging executed successfully"))
            }),
    )
    .tool(
        ToolSpec::new("test_logging_tool")
            .description("Logs only when the request asks for it with _meta io.modelcontextprotocol/logLevel (2026-07-28)")
            .handler(|ctx, _| async move {
                let requested = ctx.meta().and_then(|m| m.log_level());
                if let (Some(level), Some(peer)) = (requested, ctx.peer()) {
                    let _ = peer.notify_logging_message(LoggingMessageNotificationParam::new(level, json!("log requested"))).await;
                }
                Ok::<_, ToolError>(text_result("logging tool done"))
            }),
    )
    .tool(
        ToolSpec::new("test_tool_with_progress")
            .description("Tests tool that reports progress notifications")
            .input_schema(no_args())
            .handler(|ctx, _| async move {
                let token = ctx.progress_token();
                for (i, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(FIXTURE_STEP).await;
                    }
                    if let (Some(token), Some(peer)) = (&token, ctx.peer()) {
                        let _ = peer
                            .notify_progress(
                                ProgressNotificationParam::new(token.clone(), progress)
                                    .with_total(100.0)
                                    .with_message(format!("Completed step {progress} of 100")),
                            )
                            .await;
                    }
                }
                let text = token.map(|t| serde_json::to_string(&t.0).unwrap_or_default()).unwrap_or_else(|| "no progress token".into());
                Ok::<_, ToolError>(text_result(text))
            }),
    )
    .tool(
        ToolSpec::new("test_reconnection")
            .description("Tests SSE stream behaviour during a longer call (SEP-1699)")
            .input_schema(no_args())
            .handler(|_, _| async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok::<_, ToolError>(text_result("Reconnection test completed successfully."))
            }),
    )
    .tool(ToolSpec::new("test_trigger_tool_change").description("Announces that the tool list changed").handler(move |_, _| {
        let n = tools_changed.clone();
        async move {
            n.notify(ListChange::Tools);
            Ok::<_, ToolError>(text_result("tool list change announced"))
        }
    }))
    .tool(ToolSpec::new("test_trigger_prompt_change").description("Announces that the prompt list changed").handler(move |_, _| {
        let n = prompts_changed.clone();
        async move {
            n.notify(ListChange::Prompts);
            Ok::<_, ToolError>(text_result("prompt list change announced"))
        }
    }))
}

fn client_request_tools(b: wharf_core::AppBuilder) -> wharf_core::AppBuilder {
    b.tool(
        ToolSpec::new("test_sampling")
            .description("Tests server-initiated sampling (LLM completion request)")
            .input_schema(obj(json!({"type": "object", "properties": {"prompt": {"type": "string", "description": "The prompt to send to the LLM"}}, "required": ["prompt"]})))
            .handler(|ctx, args| async move {
                let prompt = args.get("prompt").and_then(Value::as_str).unwrap_or("Hello").to_owned();
                let result = peer(&ctx)?
                    .create_message(CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100))
                    .await
                    .map_err(|e| ToolError::Failed(format!("sampling failed: {e}")))?;
                let text = result.message.content.first().and_then(|c| c.as_text()).map(|t| t.text.clone()).unwrap_or_default();
                Ok::<_, ToolError>(text_result(format!("LLM response: {text}")))
            }),
    )
    .tool(elicitation_tool(
        "test_elicitation",
        "Tests server-initiated elicitation (user input request)",
        obj(json!({"type": "object", "properties": {"message": {"type": "string", "description": "The message to show the user"}}, "required": ["message"]})),
        |args| {
            json!({
                "mode": "form",
                "message": args.get("message").and_then(Value::as_str).unwrap_or("Please provide your information"),
                "requestedSchema": {"type": "object", "properties": {
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"}
                }, "required": ["username", "email"]}
            })
        },
        "User response",
    ))
    .tool(elicitation_tool(
        "test_elicitation_sep1034_defaults",
        "Tests elicitation with default values per SEP-1034",
        no_args(),
        |_| {
            json!({
                "mode": "form",
                "message": "Please review and update the form fields with defaults",
                "requestedSchema": {"type": "object", "properties": {
                    "name": {"type": "string", "description": "User name", "default": "John Doe"},
                    "age": {"type": "integer", "description": "User age", "default": 30},
                    "score": {"type": "number", "description": "User score", "default": 95.5},
                    "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
                    "verified": {"type": "boolean", "description": "Verification status", "default": true}
                }, "required": []}
            })
        },
        "Elicitation completed",
    ))
    .tool(elicitation_tool(
        "test_elicitation_sep1330_enums",
        "Tests elicitation with enum schema improvements per SEP-1330",
        no_args(),
        |_| {
            json!({
                "mode": "form",
                "message": "Please select options from the enum fields",
                "requestedSchema": {"type": "object", "properties": {
                    "untitledSingle": {"type": "string", "description": "Select one option", "enum": ["option1", "option2", "option3"]},
                    "titledSingle": {"type": "string", "description": "Select one option with titles", "oneOf": [
                        {"const": "value1", "title": "First Option"}, {"const": "value2", "title": "Second Option"}, {"const": "value3", "title": "Third Option"}
                    ]},
                    "legacyEnum": {"type": "string", "description": "Select one option (legacy)", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                    "untitledMulti": {"type": "array", "description": "Select multiple options", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                    "titledMulti": {"type": "array", "description": "Select multiple options with titles", "items": {"anyOf": [
                        {"const": "value1", "title": "First Choice"}, {"const": "value2", "title": "Second Choice"}, {"const": "value3", "title": "Third Choice"}
                    ]}}
                }, "required": []}
            })
        },
        "Elicitation completed",
    ))
    .tool(
        ToolSpec::new("test_missing_capability")
            .description("Needs the client's sampling capability; refuses with -32021 when it is not declared")
            .handler(|ctx, _| async move {
                if client_caps(&ctx).sampling.is_none() {
                    let mut needed = ClientCapabilities::default();
                    needed.sampling = Some(Default::default());
                    return Err(ToolError::Protocol(ErrorData::missing_required_client_capability(needed)));
                }
                Ok::<_, ToolError>(text_result("sampling capability present"))
            }),
    )
    .tool(
        ToolSpec::new("test_streaming_elicitation")
            .description("Asks for input the 2026-07-28 way: an InputRequiredResult, never a request on the stream")
            .handler(|ctx, _| async move {
                if let Some(content) = accepted(&ctx, "user_name") {
                    return Ok(text_result(format!("Hello, {}!", content.get("name").and_then(Value::as_str).unwrap_or("stranger"))).into());
                }
                input_required(json!({"resultType": "input_required", "inputRequests": elicit_name("user_name", "What is your name?")}))
            }),
    )
}

/// A legacy elicitation fixture: `params` builds the request from the arguments.
fn elicitation_tool(
    name: &'static str,
    description: &'static str,
    schema: JsonObject,
    params: fn(&JsonObject) -> Value,
    label: &'static str,
) -> ToolSpec {
    ToolSpec::new(name)
        .description(description)
        .input_schema(schema)
        .handler(move |ctx, args| async move {
            let request: ElicitRequestParams =
                serde_json::from_value(params(&args)).map_err(ToolError::internal)?;
            let result = peer(&ctx)?
                .create_elicitation(request)
                .await
                .map_err(|e| ToolError::Failed(format!("elicitation failed: {e}")))?;
            let action = serde_json::to_value(&result.action).unwrap_or(Value::Null);
            let content = result.content.unwrap_or(json!({}));
            Ok::<_, ToolError>(text_result(format!(
                "{label}: action={}, content={content}",
                action.as_str().unwrap_or("unknown")
            )))
        })
}

fn mrtr_tools(b: wharf_core::AppBuilder) -> wharf_core::AppBuilder {
    b.tool(ToolSpec::new("test_input_required_result_elicitation").description("MRTR: asks for a name by elicitation").handler(|ctx, _| async move {
        if let Some(content) = accepted(&ctx, "user_name")
            && let Some(name) = content.get("name").and_then(Value::as_str)
        {
            return Ok(text_result(format!("Hello, {name}!")).into());
        }
        input_required(json!({"resultType": "input_required", "inputRequests": elicit_name("user_name", "What is your name?")}))
    }))
    .tool(ToolSpec::new("test_input_required_result_sampling").description("MRTR: asks the client's model a question").handler(|ctx, _| async move {
        if let Some(answer) = ctx.input_responses().and_then(|r| r.get("capital_question")) {
            let text = answer.pointer("/content/text").and_then(Value::as_str).unwrap_or("");
            return Ok(text_result(format!("The model answered: {text}")).into());
        }
        input_required(json!({"resultType": "input_required", "inputRequests": {"capital_question": {
            "method": "sampling/createMessage",
            "params": {"messages": [{"role": "user", "content": {"type": "text", "text": "What is the capital of France?"}}], "maxTokens": 100}
        }}}))
    }))
    .tool(ToolSpec::new("test_input_required_result_list_roots").description("MRTR: asks for the client's roots").handler(|ctx, _| async move {
        if let Some(answer) = ctx.input_responses().and_then(|r| r.get("client_roots")) {
            let n = answer.get("roots").and_then(Value::as_array).map_or(0, Vec::len);
            return Ok(text_result(format!("The client has {n} root(s).")).into());
        }
        input_required(json!({"resultType": "input_required", "inputRequests": {"client_roots": {"method": "roots/list", "params": {}}}}))
    }))
    .tool(ToolSpec::new("test_input_required_result_request_state").description("MRTR: round-trips requestState").handler(|ctx, _| {
        async move {
            if let Some(state) = ctx.open_state::<Value>()?
                && ctx.input_responses().is_some_and(|r| r.contains_key("confirm"))
            {
                return Ok(text_result(format!("Confirmed (state round {}).", state["round"])).into());
            }
            input_required(json!({
                "resultType": "input_required",
                "inputRequests": {"confirm": {"method": "elicitation/create", "params": {
                    "message": "Please confirm",
                    "requestedSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
                }}},
                "requestState": ctx.seal_state(&json!({"round": 1}))?
            }))
        }
    }))
    .tool(ToolSpec::new("test_input_required_result_multiple_inputs").description("MRTR: three input requests at once").handler(|ctx, _| {
        async move {
            let responses = ctx.input_responses();
            let all = responses.is_some_and(|r| ["user_name", "greeting", "client_roots"].iter().all(|k| r.contains_key(*k)));
            if all && ctx.open_state::<Value>()?.is_some() {
                return Ok(text_result("Received all three inputs.").into());
            }
            let mut requests = elicit_name("user_name", "What is your name?");
            requests["greeting"] = json!({"method": "sampling/createMessage", "params": {
                "messages": [{"role": "user", "content": {"type": "text", "text": "Generate a greeting"}}], "maxTokens": 50
            }});
            requests["client_roots"] = json!({"method": "roots/list", "params": {}});
            input_required(json!({"resultType": "input_required", "inputRequests": requests, "requestState": ctx.seal_state(&json!({"round": 1}))?}))
        }
    }))
    .tool(ToolSpec::new("test_input_required_result_multi_round").description("MRTR: two rounds of questions").handler(|ctx, _| {
        async move {
            let round = ctx.open_state::<Value>()?.and_then(|s| s["round"].as_u64()).unwrap_or(0);
            let responses = ctx.input_responses();
            if round == 2 && responses.is_some_and(|r| r.contains_key("step2")) {
                return Ok(text_result("Both steps completed.").into());
            }
            if round >= 1 && responses.is_some_and(|r| r.contains_key("step1")) {
                return input_required(json!({
                    "resultType": "input_required",
                    "inputRequests": {"step2": {"method": "elicitation/create", "params": {
                        "message": "Step 2: What is your favorite color?",
                        "requestedSchema": {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
                    }}},
                    "requestState": ctx.seal_state(&json!({"round": 2}))?
                }));
            }
            input_required(json!({
                "resultType": "input_required",
                "inputRequests": elicit_name("step1", "Step 1: What is your name?"),
                "requestState": ctx.seal_state(&json!({"round": 1}))?
            }))
        }
    }))
    .tool(ToolSpec::new("test_input_required_result_tampered_state").description("MRTR: rejects a tampered requestState").handler(|ctx, _| {
        async move {
            if ctx.open_state::<Value>()?.is_some() {
                return Ok(text_result("State verified.").into());
            }
            input_required(json!({
                "resultType": "input_required",
                "inputRequests": elicit_name("user_name", "What is your name?"),
                "requestState": ctx.seal_state(&json!({"round": 1}))?
            }))
        }
    }))
    .tool(ToolSpec::new("test_input_required_result_capabilities").description("MRTR: asks only for what the client declared").handler(|ctx, _| async move {
        if ctx.input_responses().is_some_and(|r| !r.is_empty()) {
            return Ok(text_result("Received the inputs the client could give.").into());
        }
        let caps = client_caps(&ctx);
        let mut requests = json!({});
        if caps.elicitation.is_some() {
            requests = elicit_name("user_name", "What is your name?");
        }
        if caps.sampling.is_some() {
            requests["capital_question"] = json!({"method": "sampling/createMessage", "params": {
                "messages": [{"role": "user", "content": {"type": "text", "text": "What is the capital of France?"}}], "maxTokens": 100
            }});
        }
        if requests.as_object().is_some_and(|r| r.is_empty()) {
            return Ok(text_result("The client declared no capability to ask with.").into());
        }
        input_required(json!({"resultType": "input_required", "inputRequests": requests}))
    }))
}

fn resources(b: wharf_core::AppBuilder) -> wharf_core::AppBuilder {
    b.resource(ResourceSpec::text(
        "test://static-text",
        "static-text",
        "text/plain",
        "This is the content of the static text resource.",
    ))
    .resource(ResourceSpec::fixed(
        Resource::new("test://static-binary", "static-binary").with_mime_type("image/png"),
        vec![ResourceContents::blob(IMAGE_PNG, "test://static-binary").with_mime_type("image/png")],
    ))
    .resource(ResourceSpec::text(
        "test://watched-resource",
        "watched-resource",
        "text/plain",
        "Watched resource content",
    ))
    .template(TemplateSpec::new(
        ResourceTemplate::new("test://template/{id}/data", "template")
            .with_mime_type("application/json"),
        |_, uri, vars| async move {
            let id = vars.get("id").cloned().unwrap_or_default();
            let text =
                json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")})
                    .to_string();
            Ok::<_, wharf_core::ResourceError>(ReadResourceResult::new(vec![
                ResourceContents::text(text, uri).with_mime_type("application/json"),
            ]))
        },
    ))
}

fn prompts(b: wharf_core::AppBuilder) -> wharf_core::AppBuilder {
    b.prompt(PromptSpec::new(Prompt::new("test_simple_prompt", Some("A simple prompt without arguments"), None), |_, _| async {
        Ok::<_, PromptError>(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, "This is a simple prompt for testing.")]))
    }))
    .prompt(PromptSpec::new(
        Prompt::new(
            "test_prompt_with_arguments",
            Some("A prompt with required arguments"),
            Some(vec![
                PromptArgument::new("arg1").with_description("First test argument").with_required(true),
                PromptArgument::new("arg2").with_description("Second test argument").with_required(true),
            ]),
        ),
        |_, args| async move {
            let get = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
            Ok::<_, PromptError>(GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                format!("Prompt with arguments: arg1='{}', arg2='{}'", get("arg1"), get("arg2")),
            )]))
        },
    ))
    .prompt(PromptSpec::new(
        Prompt::new(
            "test_prompt_with_embedded_resource",
            Some("A prompt that embeds a resource"),
            Some(vec![PromptArgument::new("resourceUri").with_description("URI of the resource to embed").with_required(true)]),
        ),
        |_, args| async move {
            let uri = args.get("resourceUri").and_then(Value::as_str).unwrap_or_default().to_owned();
            Ok::<_, PromptError>(GetPromptResult::new(vec![
                PromptMessage::new(Role::User, ContentBlock::resource(ResourceContents::text("Embedded resource content for testing.", uri).with_mime_type("text/plain"))),
                PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
            ]))
        },
    ))
    .prompt(PromptSpec::new(Prompt::new("test_prompt_with_image", Some("A prompt with an image"), None), |_, _| async {
        Ok::<_, PromptError>(GetPromptResult::new(vec![
            PromptMessage::new(Role::User, ContentBlock::image(IMAGE_PNG, "image/png")),
            PromptMessage::new_text(Role::User, "Please analyze the image above."),
        ]))
    }))
    .prompt(PromptSpec::new(
        Prompt::new("test_input_required_result_prompt", Some("A prompt that needs context from the user (MRTR)"), None),
        |ctx, _| async move {
            let context = ctx
                .input_responses()
                .and_then(|r| r.get("user_context"))
                .filter(|a| a.get("action").and_then(Value::as_str) == Some("accept"))
                .and_then(|a| a.pointer("/content/context"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(context) = context {
                return Ok(GetPromptResponse::from(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, format!("Context: {context}"))])));
            }
            let result: InputRequiredResult = serde_json::from_value(json!({
                "resultType": "input_required",
                "inputRequests": {"user_context": {"method": "elicitation/create", "params": {
                    "message": "What context should the prompt use?",
                    "requestedSchema": {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}
                }}}
            }))
            .map_err(|e| PromptError::Internal(e.into()))?;
            Ok(GetPromptResponse::InputRequired(result))
        },
    ))
}
