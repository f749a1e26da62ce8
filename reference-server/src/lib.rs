//! seqsync reference server.

pub mod auth;
pub mod faults;
pub mod log;
pub mod metrics;
