//! The `sprocket` binary, Sprocket's composition root: its commands
//! ([`cli`]) wire the services of `sprocket-server` to the configuration.
//! The only crate that uses `anyhow`: every library below it returns its own
//! error type.

pub mod cli;
