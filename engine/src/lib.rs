//! The `sprocket` binary's library: the status API, the projector, the client
//! commands and the one-process dev mode.

pub mod api;
pub mod cli;
pub mod dev;
pub mod faults;
pub mod lag;
pub mod projector;
pub mod sample;
pub mod scale;
pub mod services;
pub mod standin;
