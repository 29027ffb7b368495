//! Strongroom's own load generator: closed-loop virtual clients that run whole OAuth/FAPI
//! operations against a server described by a target file, and report throughput, latency,
//! and the server's CPU and memory read from `/proc`.
//!
//! The pure parts (percentiles, `/proc` parsing, target files) live here with unit tests;
//! the network parts are in [`scenarios`].

pub mod procfs;
pub mod report;
pub mod scenarios;
pub mod stats;
pub mod target;
