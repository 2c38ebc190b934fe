//! Resources (fixed URIs) and resource templates (URIs with `{variables}`).

use std::{collections::BTreeMap, future::Future, sync::Arc};

use futures::future::BoxFuture;
use rmcp::model::{
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
};

use crate::{context::CallContext, error::ResourceError, uri_template::UriTemplate};

/// The boxed reader every resource is stored as: it gets the requested URI and,
/// for templates, the variables matched in it.
pub(crate) type ReadFn = Arc<
    dyn Fn(
            CallContext,
            String,
            BTreeMap<String, String>,
        ) -> BoxFuture<'static, Result<ReadResourceResponse, ResourceError>>
        + Send
        + Sync,
>;

fn boxed_reader<F, Fut, R>(read: F) -> ReadFn
where
    F: Fn(CallContext, String, BTreeMap<String, String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, ResourceError>> + Send + 'static,
    R: Into<ReadResourceResponse>,
{
    Arc::new(move |ctx, uri, vars| {
        let fut = read(ctx, uri, vars);
        Box::pin(async move { fut.await.map(Into::into) })
    })
}

/// A resource at one URI.
#[derive(Clone)]
pub struct ResourceSpec {
    pub(crate) resource: Resource,
    pub(crate) read: ReadFn,
}

impl std::fmt::Debug for ResourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceSpec")
            .field("uri", &self.resource.uri)
            .finish()
    }
}

impl ResourceSpec {
    /// A resource whose reader computes its contents on each read.
    pub fn new<F, Fut, R>(resource: Resource, read: F) -> Self
    where
        F: Fn(CallContext, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ResourceError>> + Send + 'static,
        R: Into<ReadResourceResponse>,
    {
        Self {
            resource,
            read: boxed_reader(move |ctx, uri, _| read(ctx, uri)),
        }
    }

    /// A resource whose contents never change (a widget's HTML, a fixture).
    pub fn fixed(resource: Resource, contents: Vec<ResourceContents>) -> Self {
        let result = ReadResourceResult::new(contents);
        Self::new(resource, move |_, _| {
            let result = result.clone();
            async move { Ok::<_, ResourceError>(result) }
        })
    }

    /// A fixed text resource.
    pub fn text(
        uri: impl Into<String>,
        name: impl Into<String>,
        mime_type: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        let uri: String = uri.into();
        let mime: String = mime_type.into();
        let resource = Resource::new(uri.clone(), name).with_mime_type(mime.clone());
        Self::fixed(
            resource,
            vec![ResourceContents::text(text, uri).with_mime_type(mime)],
        )
    }

    pub fn uri(&self) -> &str {
        &self.resource.uri
    }

    pub fn definition(&self) -> &Resource {
        &self.resource
    }
}

/// A family of resources named by a URI template.
#[derive(Clone)]
pub struct TemplateSpec {
    pub(crate) template: ResourceTemplate,
    pub(crate) read: ReadFn,
}

impl std::fmt::Debug for TemplateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateSpec")
            .field("uri_template", &self.template.uri_template)
            .finish()
    }
}

impl TemplateSpec {
    pub fn new<F, Fut, R>(template: ResourceTemplate, read: F) -> Self
    where
        F: Fn(CallContext, String, BTreeMap<String, String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ResourceError>> + Send + 'static,
        R: Into<ReadResourceResponse>,
    {
        Self {
            template,
            read: boxed_reader(read),
        }
    }

    pub fn definition(&self) -> &ResourceTemplate {
        &self.template
    }

    pub(crate) fn compile(&self) -> Result<UriTemplate, crate::Problem> {
        UriTemplate::parse(&self.template.uri_template)
    }
}
