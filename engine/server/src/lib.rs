//! Sprocket's services: the status API, the projector, lag and scaling
//! readings, and starting them (one per process, or all in one for
//! `sprocket dev`).

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod dev;
pub mod error;
pub mod janitor;
pub mod lag;
pub mod projector;
pub mod scale;
pub mod services;
pub mod standin;
pub mod webhooks;

pub use error::ServerError;
