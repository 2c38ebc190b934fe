//! End-to-end tests of the `wharf` binary: real processes, real sockets, real files.

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
