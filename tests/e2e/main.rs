//! End-to-end tests: Sprocket driven as its users drive it.

mod pipeline;
