//! The plugin interface of Ferrobase.
//!
//! A plugin is a value implementing [`Plugin`], registered in the binary's `main.rs`. This
//! crate is the only surface the core promises to keep stable for template users; plugins
//! depend on it and never on the app's internals. It grows as plugins need more (record
//! events, collections they own, settings); each addition is a documented method here.

/// A Ferrobase plugin.
pub trait Plugin: Send + Sync {
    /// A short, unique, lowercase name (`"stripe"`, `"oauth"`), used in logs and settings.
    fn name(&self) -> &str;

    /// Routes the plugin adds, mounted beside the core API. Paths should live under
    /// `/api/<plugin name>/` to stay clear of the core's routes.
    fn routes(&self) -> Option<axum::Router> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Hello;

    impl Plugin for Hello {
        fn name(&self) -> &str {
            "hello"
        }
    }

    #[test]
    fn defaults_add_nothing() {
        let p: Box<dyn Plugin> = Box::new(Hello);
        assert_eq!(p.name(), "hello");
        assert!(p.routes().is_none());
    }
}
