//! End-to-end tests of the `wharf` binary: real processes, real sockets, real files.

mod check;
mod process;
mod replicas;
