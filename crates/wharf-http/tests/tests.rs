//! Integration tests of the HTTP side: a real router on a real loopback socket,
//! driven with a plain HTTP client so that status codes and headers are visible.

// Tests measure wall-clock time and hold plain mutexes; the runtime rules
// (clippy.toml) are for the code under test.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod action;
mod auth;
mod common;
mod drain;
mod fast_path;
mod guard;
mod hostile;
mod limits;
mod observability;
mod protocol;
mod rough_edges;
mod sessions;
