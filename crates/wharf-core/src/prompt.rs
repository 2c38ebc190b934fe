//! Prompts: named message templates with arguments.

use std::{future::Future, sync::Arc};

use futures::future::BoxFuture;
use rmcp::model::{GetPromptResponse, JsonObject, Prompt, PromptArgument};

use crate::{context::CallContext, error::PromptError};

pub(crate) type PromptFn = Arc<
    dyn Fn(CallContext, JsonObject) -> BoxFuture<'static, Result<GetPromptResponse, PromptError>>
        + Send
        + Sync,
>;

/// A prompt definition plus the function that renders it.
#[derive(Clone)]
pub struct PromptSpec {
    pub(crate) prompt: Prompt,
    pub(crate) render: PromptFn,
}

impl std::fmt::Debug for PromptSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptSpec")
            .field("name", &self.prompt.name)
            .finish()
    }
}

impl PromptSpec {
    /// `render` receives the arguments; required ones are checked before it runs.
    pub fn new<F, Fut, R>(prompt: Prompt, render: F) -> Self
    where
        F: Fn(CallContext, JsonObject) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, PromptError>> + Send + 'static,
        R: Into<GetPromptResponse>,
    {
        Self {
            prompt,
            render: Arc::new(move |ctx, args| {
                let fut = render(ctx, args);
                Box::pin(async move { fut.await.map(Into::into) })
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.prompt.name
    }

    pub fn definition(&self) -> &Prompt {
        &self.prompt
    }

    pub(crate) fn check_arguments(&self, args: &JsonObject) -> Result<(), PromptError> {
        for arg in self.prompt.arguments.iter().flatten() {
            if is_required(arg) && !args.contains_key(&arg.name) {
                return Err(PromptError::MissingArgument(arg.name.clone()));
            }
        }
        Ok(())
    }
}

fn is_required(arg: &PromptArgument) -> bool {
    arg.required.unwrap_or(false)
}
