//! The `ferrobase` binary: picks the plugins compiled in and runs the command line
//! (`ferrobase::cli`). A template user adds their own plugins to the list here.

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: under concurrent requests glibc's arenas spent a fifth
/// of the CPU in malloc/free (measured with perf, docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The plugins of this binary. Each official plugin is a Cargo feature of this crate (on by
/// default), so a build can leave one out; `FERROBASE_PLUGINS` switches them at run time.
/// A template user adds their own here.
fn plugins() -> Vec<Box<dyn ferrobase::plugin::Plugin>> {
    vec![
        #[cfg(feature = "oauth")]
        Box::new(ferrobase_oauth::OAuth),
        #[cfg(feature = "mcp")]
        Box::new(ferrobase_mcp::Mcp),
        #[cfg(feature = "stripe")]
        Box::new(ferrobase_stripe::Stripe),
    ]
}

fn main() -> ExitCode {
    ferrobase::cli::main(plugins())
}
