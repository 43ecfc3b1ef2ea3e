//! Collections and fields: the model, its validation, and keeping tables in step with it.

pub mod auth_options;
pub mod collection;
pub mod ddl;
pub mod defaults;
pub mod diff;
pub mod export;
pub mod field;
pub mod ids;
pub mod index;
pub mod migrations;
pub mod pattern;
pub mod plugin_owned;
pub mod store;

pub use collection::{Collection, CollectionType, Rules};
pub use field::{Field, FieldKind};
pub use store::{CollectionStore, Registry};

use crate::db::DbError;
use crate::validation::ValidationErrors;

/// Errors of the schema layer.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("validation failed")]
    Validation(ValidationErrors),
    #[error("the submitted data could not be read: {0}")]
    Malformed(String),
    #[error("collection not found")]
    NotFound,
    /// A change that is not allowed as a whole (deleting a referenced collection, ...).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("internal schema error: {0}")]
    Internal(String),
}

impl From<ValidationErrors> for SchemaError {
    fn from(e: ValidationErrors) -> Self {
        SchemaError::Validation(e)
    }
}

impl From<collection::MalformedCollection> for SchemaError {
    fn from(e: collection::MalformedCollection) -> Self {
        SchemaError::Malformed(e.to_string())
    }
}
