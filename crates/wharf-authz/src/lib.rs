//! Account linking: Wharf as the OAuth 2.1 authorization server of its own MCP
//! endpoint, with the user signing in at the identity provider they already
//! have (any OIDC provider, GitHub, Google, Microsoft Entra).
//!
//! MCP clients (ChatGPT, Claude, the SDKs) register here (RFC 7591, or a Client
//! ID Metadata Document), are sent to `authorize`, and get Wharf's own
//! audience-bound JWTs and rotating refresh tokens; the provider's tokens never
//! leave this crate. State lives in a [`Store`] (the catalog database in the
//! binary), so any replica finishes a flow another began.
//!
//! Endpoints ([`routes`]): RFC 8414 and OpenID discovery metadata, `authorize`,
//! the provider's `callback`, `consent`, `token`, `register`, `revoke`,
//! `jwks.json`, and the user's page of linked clients (`account`).

mod clients;
mod endpoints;
mod error;
mod grants;
mod keys;
mod metadata_fetch;
mod metrics;
mod pages;
mod provider;
mod server;
mod settings;
mod store;

pub use endpoints::routes;
pub use error::StoreError;
pub use server::AuthServer;
pub use settings::{
    AllowList, MetadataFetchLimits, Preset, ProviderSettings, Secret, Settings, is_multi_tenant,
};
pub use store::{Consumed, MemoryStore, Record, Store, kind};
