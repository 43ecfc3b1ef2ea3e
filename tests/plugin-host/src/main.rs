//! The ferrobase binary with the fixture plugin, for the plugin interface's end-to-end tests.

fn main() -> std::process::ExitCode {
    ferrobase::cli::main(vec![Box::new(ferrobase_plugin_host::Fixture::default())])
}
