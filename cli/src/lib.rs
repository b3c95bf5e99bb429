//! The library side of `caihong`: [`Client`], a typed client of a node's HTTP API, for the
//! command line, the benchmark and the multi-process tests.
//!
//! # Errors
//! [`Failure`] separates what a node refused (`Rejected`, with its status and error body:
//! the command exits 1) from what went wrong here or on the way (`Local`: exit 2). The
//! binary's commands use `anyhow` at their top level and map these to exit codes; nothing in
//! the CLI panics on input.
pub mod api_client;

pub use api_client::{Client, Failure};
