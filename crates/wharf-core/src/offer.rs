//! What an app offers at one moment: its tools, resources, templates and prompts,
//! checked and indexed.
//!
//! Most apps fix their offer when they are built. A gateway's offer follows its
//! upstreams, so the [`App`](crate::App) keeps the current [`Offer`] behind an
//! atomic pointer: [`App::replace_offer`](crate::App::replace_offer) swaps in a new
//! one while calls in flight finish on the one they started with.

use std::collections::HashMap;

use crate::{
    error::AppError,
    prompt::PromptSpec,
    resource::{ResourceSpec, TemplateSpec},
    tool::ToolSpec,
    uri_template::UriTemplate,
    validate::ArgumentValidator,
};

/// Tool names: the characters MCP 2025-11-25 allows, and its length bound.
const MAX_TOOL_NAME_LEN: usize = 128;

/// The parts of an offer before they are checked.
#[derive(Debug, Default, Clone)]
pub struct Offering {
    pub tools: Vec<ToolSpec>,
    pub resources: Vec<ResourceSpec>,
    pub templates: Vec<TemplateSpec>,
    pub prompts: Vec<PromptSpec>,
    /// (alias, tool): other names a tool answers to, never listed. A gateway
    /// gives an upstream's tools their own names too, so that the upstream's
    /// widget, which calls them by those names, keeps working.
    pub aliases: Vec<(String, String)>,
}

pub(crate) struct RegisteredTool {
    pub(crate) spec: ToolSpec,
    pub(crate) validator: ArgumentValidator,
    /// Its schema asks for arguments mirrored in `Mcp-Param-*` headers.
    pub(crate) param_headers: bool,
}

/// A checked offer: names unique, schemas compiled, templates parsed.
pub struct Offer {
    pub(crate) tools: Vec<RegisteredTool>,
    tool_index: HashMap<String, usize>,
    resources: Vec<ResourceSpec>,
    resource_index: HashMap<String, usize>,
    pub(crate) templates: Vec<(TemplateSpec, UriTemplate)>,
    prompts: Vec<PromptSpec>,
    prompt_index: HashMap<String, usize>,
}

impl std::fmt::Debug for Offer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offer")
            .field("tools", &self.tools.len())
            .field("resources", &self.resources.len())
            .field("templates", &self.templates.len())
            .field("prompts", &self.prompts.len())
            .finish()
    }
}

/// Which lists differ between two offers, so only those are announced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    pub tools: bool,
    pub resources: bool,
    pub prompts: bool,
}

impl Offer {
    /// Check an offering. `require_widgets` refuses a tool whose widget resource is
    /// missing: right for an app's own tools, wrong for a gateway, whose upstream
    /// may list the resource later than the tool.
    pub(crate) fn check(parts: Offering, require_widgets: bool) -> Result<Self, AppError> {
        let mut tool_index = HashMap::new();
        let mut tools = Vec::with_capacity(parts.tools.len());
        for spec in parts.tools {
            let name = spec.name().to_owned();
            if !valid_tool_name(&name) {
                return Err(AppError::BadToolName(name));
            }
            let validator = ArgumentValidator::new(&spec.tool.input_schema).map_err(|problem| {
                AppError::BadSchema {
                    tool: name.clone(),
                    problem,
                }
            })?;
            if tool_index.insert(name.clone(), tools.len()).is_some() {
                return Err(AppError::DuplicateTool(name));
            }
            let param_headers = spec.mirrors_arguments_in_headers();
            tools.push(RegisteredTool {
                spec,
                validator,
                param_headers,
            });
        }
        for (alias, tool) in parts.aliases {
            // A listed name always wins over an alias.
            if tool_index.contains_key(&alias) {
                continue;
            }
            if let Some(&at) = tool_index.get(&tool) {
                tool_index.insert(alias, at);
            }
        }
        let mut resource_index = HashMap::new();
        for (i, r) in parts.resources.iter().enumerate() {
            if resource_index.insert(r.uri().to_owned(), i).is_some() {
                return Err(AppError::DuplicateResource(r.uri().to_owned()));
            }
        }
        if require_widgets {
            for t in &tools {
                if let Some(uri) = t.spec.widget_uri()
                    && !resource_index.contains_key(uri)
                {
                    return Err(AppError::UnknownWidget {
                        tool: t.spec.name().to_owned(),
                        uri: uri.to_owned(),
                    });
                }
            }
        }
        let mut templates = Vec::with_capacity(parts.templates.len());
        for t in parts.templates {
            let compiled = t.compile().map_err(|problem| AppError::BadTemplate {
                template: t.template.uri_template.clone(),
                problem,
            })?;
            templates.push((t, compiled));
        }
        let mut prompt_index = HashMap::new();
        for (i, p) in parts.prompts.iter().enumerate() {
            if prompt_index.insert(p.name().to_owned(), i).is_some() {
                return Err(AppError::DuplicatePrompt(p.name().to_owned()));
            }
        }
        Ok(Self {
            tools,
            tool_index,
            resources: parts.resources,
            resource_index,
            templates,
            prompts: parts.prompts,
            prompt_index,
        })
    }

    pub fn tools(&self) -> impl Iterator<Item = &ToolSpec> {
        self.tools.iter().map(|t| &t.spec)
    }

    pub fn tool(&self, name: &str) -> Option<&ToolSpec> {
        self.tool_index.get(name).map(|&i| &self.tools[i].spec)
    }

    /// Where the tool named `name` is, for [`crate::ResolvedTool`].
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.tool_index.get(name).copied()
    }

    pub(crate) fn registered_at(&self, index: usize) -> &RegisteredTool {
        &self.tools[index]
    }

    pub fn resources(&self) -> impl Iterator<Item = &ResourceSpec> {
        self.resources.iter()
    }

    pub fn resource(&self, uri: &str) -> Option<&ResourceSpec> {
        self.resource_index.get(uri).map(|&i| &self.resources[i])
    }

    pub fn templates(&self) -> impl Iterator<Item = &TemplateSpec> {
        self.templates.iter().map(|(t, _)| t)
    }

    pub fn prompts(&self) -> impl Iterator<Item = &PromptSpec> {
        self.prompts.iter()
    }

    pub fn prompt(&self, name: &str) -> Option<&PromptSpec> {
        self.prompt_index.get(name).map(|&i| &self.prompts[i])
    }

    pub(crate) fn is_empty_of_resources(&self) -> bool {
        self.resources.is_empty() && self.templates.is_empty()
    }

    /// The lists whose definitions differ from `before`'s.
    pub(crate) fn changed_from(&self, before: &Offer) -> Changed {
        fn differ<'a, T: PartialEq + 'a>(
            a: impl Iterator<Item = &'a T>,
            b: impl Iterator<Item = &'a T>,
        ) -> bool {
            !a.eq(b)
        }
        Changed {
            tools: differ(
                self.tools().map(ToolSpec::definition),
                before.tools().map(ToolSpec::definition),
            ),
            resources: differ(
                self.resources().map(ResourceSpec::definition),
                before.resources().map(ResourceSpec::definition),
            ) || differ(
                self.templates().map(TemplateSpec::definition),
                before.templates().map(TemplateSpec::definition),
            ),
            prompts: differ(
                self.prompts().map(PromptSpec::definition),
                before.prompts().map(PromptSpec::definition),
            ),
        }
    }
}

fn valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
