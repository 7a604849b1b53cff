//! Per-pixel loops compiled twice: for the baseline CPU the crate is built
//! for (x86-64: SSE2 only; aarch64: NEON) and, on x86-64, for AVX2, with the
//! AVX2 copy chosen at run time when the CPU has it. The loops are plain Rust
//! that the compiler vectorises; AVX2's byte shuffles and eight-lane floats
//! make the packed to planar split of the decoder about twenty times faster
//! and the HSV kernel about twice as fast as the SSE2 code.
//!
//! Both copies compute the same values bit for bit: the body is the same
//! Rust, and the compiler neither reorders float sums nor fuses multiplies
//! into adds without being told to. `SPROCKET_SIMD=off` in the environment
//! (read once, on the first call) or [`set_fast_paths`] runs the baseline
//! copies only, which is what a CPU without AVX2 (or an arm64 one) runs; the
//! tests use it to hold the two to each other on a machine that has AVX2.

use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that turns the fast paths off (`off`, `0`,
/// `false` or `portable`); anything else, or unset, leaves them to the CPU.
pub const ENV: &str = "SPROCKET_SIMD";

const UNRESOLVED: u8 = 0;
const FAST: u8 = 1;
const PORTABLE: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNRESOLVED);

/// Whether the CPU has the instructions of the fast copies (AVX2 on x86-64;
/// never on other architectures, where only the portable copy exists).
pub fn cpu_has_fast_paths() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether `value` (of [`ENV`]) asks for the portable copies only.
fn turned_off(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "off" | "0" | "false" | "portable"
    )
}

/// Whether the fast copies run: the CPU has them and neither [`ENV`] nor
/// [`set_fast_paths`] turned them off. A cached load after the first call.
#[inline]
pub fn fast_paths() -> bool {
    match STATE.load(Ordering::Relaxed) {
        FAST => true,
        PORTABLE => false,
        _ => {
            let off = std::env::var(ENV).is_ok_and(|v| turned_off(&v));
            let fast = !off && cpu_has_fast_paths();
            // A concurrent `set_fast_paths` wins over the environment.
            let resolved = if fast { FAST } else { PORTABLE };
            match STATE.compare_exchange(UNRESOLVED, resolved, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => fast,
                Err(now) => now == FAST,
            }
        }
    }
}

/// Turns the fast copies on (where the CPU has them) or off for the whole
/// process, over [`ENV`]; returns whether they now run. Calls already
/// running finish on the copy they started on.
pub fn set_fast_paths(enabled: bool) -> bool {
    let fast = enabled && cpu_has_fast_paths();
    STATE.store(if fast { FAST } else { PORTABLE }, Ordering::Relaxed);
    fast
}

/// Defines `fn $name(args) -> ret { body }` whose body is compiled for the
/// baseline CPU and, on x86-64, also with AVX2 enabled; each call runs the
/// AVX2 copy when [`fast_paths`] says so (a cached load). Whatever the body
/// calls must be `#[inline(always)]` to be compiled with AVX2 too.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn generic($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    generic($($arg),*)
                }
                if $crate::simd::fast_paths() {
                    // SAFETY: `avx2` only needs the CPU to have AVX2, which
                    // `fast_paths` checked.
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_values_turn_the_fast_paths_off() {
        for v in ["off", "OFF", " 0 ", "false", "portable"] {
            assert!(turned_off(v), "{v:?}");
        }
        for v in ["", "on", "1", "avx2", "auto"] {
            assert!(!turned_off(v), "{v:?}");
        }
    }
}
