//! Integration tests of the HTTP side: a real router on a real loopback socket,
//! driven with a plain HTTP client so that status codes and headers are visible.

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
