//! Helpers for the contract tests: fresh stores on each backend, and histories.
//! Each test binary uses part of them.
#![allow(dead_code)]

pub mod history;
pub mod stores;

/// Makes each named `fn(&Projections)` a test on SQLite and one on
/// PostgreSQL (skipped where no PostgreSQL answers).
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&$crate::support::stores::sqlite().projections); })*
        }
        mod postgres {
            $(#[test] fn $name() {
                if let Some(store) = $crate::support::stores::postgres() {
                    super::$name(&store.projections);
                }
            })*
        }
    };
}
