//! Per-pixel loops compiled twice: for the baseline CPU the crate is built
//! for (x86-64: SSE2 only) and for AVX2, with the AVX2 copy chosen at run
//! time when the CPU has it. The loops are plain Rust that the compiler
//! vectorises; AVX2's byte shuffles and eight-lane floats make the packed to
//! planar split of the decoder about twenty times faster and the HSV kernel
//! about twice as fast as the SSE2 code.

/// Defines `fn $name(args) -> ret { body }` whose body is compiled for the
/// baseline CPU and, on x86-64, also with AVX2 enabled; each call runs the
/// AVX2 copy when the CPU supports it (the check is a cached load). Whatever
/// the body calls must be `#[inline(always)]` to be compiled with AVX2 too.
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
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: `avx2` only needs the CPU to have AVX2, which
                    // was just checked.
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

pub(crate) use multiversion;
