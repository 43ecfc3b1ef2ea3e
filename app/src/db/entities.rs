//! SeaORM entities of the tables whose schema is fixed: PocketBase's system tables in
//! `data.db` (`_collections`, `_params`, `_migrations`, and the system collections `_mfas`,
//! `_otps`, `_externalAuths`, `_authOrigins`) and the request log `_logs` in `auxiliary.db`.
//!
//! Column names and types are PocketBase's (camelCase columns, text ids, dates as text in
//! PocketBase's format), so the same entities read a data directory PocketBase wrote. Record
//! tables of user collections have a schema known only at run time and stay on sea-query
//! statements (`records`), run through the same SeaORM connection (`db::Conn`).
//!
//! Rows of the four system collections are also records: the records API and the dashboard
//! read them through `records` like any collection. The auth flows and the OAuth plugin
//! write and look them up through these entities.

use sea_orm::sea_query::{self, ArrayType, ColumnType, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, QueryResult, TryGetError, TryGetable};

/// Text that SQLite may hold as TEXT or as BLOB: PocketBase (Go's `database/sql` binding
/// `[]byte`) writes some JSON columns as blobs, which SeaORM's `String` refuses. Written back
/// as TEXT.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl From<Text> for sea_orm::Value {
    fn from(t: Text) -> Self {
        t.0.into()
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text(s)
    }
}

impl TryGetable for Text {
    fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
        match String::try_get_by(res, idx) {
            Ok(s) => Ok(Text(s)),
            Err(TryGetError::Null(e)) => Err(TryGetError::Null(e)),
            Err(_) => Vec::<u8>::try_get_by(res, idx)
                .map(|b| Text(String::from_utf8_lossy(&b).into_owned())),
        }
    }
}

impl ValueType for Text {
    fn try_from(v: sea_orm::Value) -> Result<Self, ValueTypeErr> {
        <String as ValueType>::try_from(v).map(Text)
    }

    fn type_name() -> String {
        "Text".to_owned()
    }

    fn array_type() -> ArrayType {
        ArrayType::String
    }

    fn column_type() -> ColumnType {
        ColumnType::Text
    }
}

impl sea_query::Nullable for Text {
    fn null() -> sea_orm::Value {
        <String as sea_query::Nullable>::null()
    }
}

impl sea_orm::IntoActiveValue<Text> for Text {
    fn into_active_value(self) -> sea_orm::ActiveValue<Text> {
        sea_orm::ActiveValue::Set(self)
    }
}

/// `_collections`: one row per collection; `fields`, `indexes` and `options` are JSON text.
pub mod collection {
    use sea_orm::entity::prelude::*;

    use super::Text;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "_collections")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub system: bool,
        #[sea_orm(column_name = "type")]
        pub kind: String,
        pub name: String,
        #[sea_orm(column_type = "Text")]
        pub fields: Text,
        #[sea_orm(column_type = "Text")]
        pub indexes: Text,
        #[sea_orm(column_name = "listRule")]
        pub list_rule: Option<String>,
        #[sea_orm(column_name = "viewRule")]
        pub view_rule: Option<String>,
        #[sea_orm(column_name = "createRule")]
        pub create_rule: Option<String>,
        #[sea_orm(column_name = "updateRule")]
        pub update_rule: Option<String>,
        #[sea_orm(column_name = "deleteRule")]
        pub delete_rule: Option<String>,
        #[sea_orm(column_type = "Text")]
        pub options: Text,
        pub created: String,
        pub updated: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `_params`: key/value settings (`settings` holds the app settings as JSON).
pub mod param {
    use sea_orm::entity::prelude::*;

    use super::Text;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "_params")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(column_type = "Text", nullable)]
        pub value: Option<Text>,
        pub created: String,
        pub updated: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `_migrations`: applied migrations (system and collection migrations), as PocketBase
/// records them: the file name and the time applied, in microseconds.
pub mod migration {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "_migrations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub file: String,
        pub applied: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `_externalAuths`: which OAuth2 provider identity signs in as which auth record.
pub mod external_auth {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "_externalAuths")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(column_name = "collectionRef")]
        pub collection_ref: String,
        #[sea_orm(column_name = "recordRef")]
        pub record_ref: String,
        pub provider: String,
        #[sea_orm(column_name = "providerId")]
        pub provider_id: String,
        pub created: String,
        pub updated: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `_mfas`: a first factor passed, waiting for the second (multi-factor sign-in).
pub mod mfa {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "_mfas")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(column_name = "collectionRef")]
        pub collection_ref: String,
        #[sea_orm(column_name = "recordRef")]
        pub record_ref: String,
        pub method: String,
        pub created: String,
        pub updated: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `_otps`: one-time passwords sent (the password is stored as a bcrypt hash).
pub mod otp {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "_otps")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(column_name = "collectionRef")]
        pub collection_ref: String,
        #[sea_orm(column_name = "recordRef")]
        pub record_ref: String,
        pub password: String,
        #[sea_orm(column_name = "sentTo")]
        pub sent_to: String,
        pub created: String,
        pub updated: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `_authOrigins`: the devices (fingerprints) an auth record has signed in from.
pub mod auth_origin {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "_authOrigins")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(column_name = "collectionRef")]
        pub collection_ref: String,
        #[sea_orm(column_name = "recordRef")]
        pub record_ref: String,
        pub fingerprint: String,
        pub created: String,
        pub updated: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `_logs` (in `auxiliary.db`): one request log entry; `data` is JSON text.
pub mod log {
    use sea_orm::entity::prelude::*;

    use super::Text;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "_logs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub level: i64,
        pub message: String,
        #[sea_orm(column_type = "Text")]
        pub data: Text,
        pub created: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
