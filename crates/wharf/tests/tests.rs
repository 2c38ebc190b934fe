//! End-to-end tests of the `wharf` binary: real processes, real sockets, real files.

// Tests measure wall-clock time and hold plain mutexes; the runtime rules
// (clippy.toml) are for the code under test.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod catalog;
mod chat;
mod check;
mod config_tools;
mod gateway;
mod gateway_sessions;
mod hostile;
mod import;
mod logs;
mod process;
mod replicas;
mod security;
mod stdio;
mod telemetry;
mod tls;
