//! The collections a new database starts with, as PocketBase creates them.

use super::collection::{Collection, CollectionType, Rules, autodate_field};
use super::field::{Field, FieldKind};

const OWNER_RULE: &str = "@request.auth.id != '' && recordRef = @request.auth.id && collectionRef = @request.auth.collectionId";

fn text(name: &str, required: bool, hidden: bool, max: i64) -> Field {
    let mut f = Field {
        id: String::new(),
        name: name.into(),
        system: true,
        hidden,
        presentable: false,
        required,
        help: String::new(),
        kind: FieldKind::Text {
            min: 0,
            max,
            pattern: String::new(),
            autogenerate_pattern: String::new(),
            primary_key: false,
        },
    };
    f.ensure_id();
    f
}

fn base_system(name: &str, extra: Vec<Field>, rules: Rules, indexes: Vec<String>) -> Collection {
    let mut c = Collection::scaffold(CollectionType::Base);
    c.name = name.into();
    c.system = true;
    c.fields.push(text("collectionRef", true, false, 0));
    c.fields.push(text("recordRef", true, false, 0));
    c.fields.extend(extra);
    c.fields.push(autodate_field("created", false, true));
    c.fields.push(autodate_field("updated", true, true));
    c.rules = rules;
    c.indexes = indexes;
    c.normalize();
    c
}

fn owner_rules(delete: bool) -> Rules {
    Rules {
        list: Some(OWNER_RULE.into()),
        view: Some(OWNER_RULE.into()),
        create: None,
        update: None,
        delete: delete.then(|| OWNER_RULE.into()),
    }
}

/// `_superusers`: the accounts that may do anything, including the dashboard.
pub fn superusers() -> Collection {
    let mut c = Collection::scaffold(CollectionType::Auth);
    c.name = "_superusers".into();
    c.system = true;
    c.fields.push(autodate_field("created", false, true));
    c.fields.push(autodate_field("updated", true, true));
    if let Some(a) = &mut c.auth {
        a.auth_token.duration = 86_400;
    }
    c.normalize();
    c
}

/// The default `users` collection.
pub fn users() -> Collection {
    let mut c = Collection::scaffold(CollectionType::Auth);
    c.id = "_pb_users_auth_".into();
    c.name = "users".into();
    let owner = Some("id = @request.auth.id".to_string());
    c.rules = Rules {
        list: owner.clone(),
        view: owner.clone(),
        create: Some(String::new()),
        update: owner.clone(),
        delete: owner,
    };
    let mut name = text("name", false, false, 255);
    name.system = false;
    c.fields.push(name);
    let mut avatar = Field {
        id: String::new(),
        name: "avatar".into(),
        system: false,
        hidden: false,
        presentable: false,
        required: false,
        help: String::new(),
        kind: FieldKind::File {
            max_select: 1,
            max_size: 0,
            mime_types: [
                "image/jpeg",
                "image/png",
                "image/svg+xml",
                "image/gif",
                "image/webp",
            ]
            .map(String::from)
            .to_vec(),
            thumbs: vec![],
            protected: false,
        },
    };
    avatar.ensure_id();
    c.fields.push(avatar);
    c.fields.push(autodate_field("created", false, false));
    c.fields.push(autodate_field("updated", true, false));
    if let Some(a) = &mut c.auth {
        a.oauth2.mapped_fields.name = "name".into();
        a.oauth2.mapped_fields.avatar_url = "avatar".into();
    }
    c.normalize();
    c
}

/// Every collection a fresh database gets, in PocketBase's order.
pub fn initial_collections() -> Vec<Collection> {
    let mut otp_password = Field {
        id: String::new(),
        name: "password".into(),
        system: true,
        hidden: true,
        presentable: false,
        required: true,
        help: String::new(),
        kind: FieldKind::Password {
            min: 0,
            max: 0,
            pattern: String::new(),
            cost: 8,
        },
    };
    otp_password.ensure_id();
    vec![
        base_system(
            "_mfas",
            vec![text("method", true, false, 0)],
            owner_rules(false),
            vec!["CREATE INDEX `idx_mfas_collectionRef_recordRef` ON `_mfas` (collectionRef,recordRef)".into()],
        ),
        base_system(
            "_otps",
            vec![otp_password, text("sentTo", false, true, 0)],
            owner_rules(false),
            vec!["CREATE INDEX `idx_otps_collectionRef_recordRef` ON `_otps` (collectionRef, recordRef)".into()],
        ),
        base_system(
            "_externalAuths",
            vec![text("provider", true, false, 0), text("providerId", true, false, 0)],
            owner_rules(true),
            vec![
                "CREATE UNIQUE INDEX `idx_externalAuths_record_provider` ON `_externalAuths` (collectionRef, recordRef, provider)".into(),
                "CREATE UNIQUE INDEX `idx_externalAuths_collection_provider` ON `_externalAuths` (collectionRef, provider, providerId)".into(),
            ],
        ),
        base_system(
            "_authOrigins",
            vec![text("fingerprint", true, false, 0)],
            owner_rules(true),
            vec!["CREATE UNIQUE INDEX `idx_authOrigins_unique_pairs` ON `_authOrigins` (collectionRef, recordRef, fingerprint)".into()],
        ),
        superusers(),
        users(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_pocketbase() {
        let all = initial_collections();
        let id = |n: &str| all.iter().find(|c| c.name == n).unwrap().id.clone();
        assert_eq!(id("_mfas"), "pbc_2279338944");
        assert_eq!(id("_otps"), "pbc_1638494021");
        assert_eq!(id("_externalAuths"), "pbc_2281828961");
        assert_eq!(id("_authOrigins"), "pbc_4275539003");
        assert_eq!(id("_superusers"), "pbc_3142635823");
        assert_eq!(id("users"), "_pb_users_auth_");
    }

    #[test]
    fn users_fields_match_pocketbase() {
        let u = users();
        let names: Vec<_> = u.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "password",
                "tokenKey",
                "email",
                "emailVisibility",
                "verified",
                "name",
                "avatar",
                "created",
                "updated"
            ]
        );
        assert_eq!(u.field("name").unwrap().id, "text1579384326");
        assert_eq!(u.field("avatar").unwrap().id, "file376926767");
        assert_eq!(u.indexes.len(), 2);
        assert!(u.indexes[0].contains("idx_tokenKey__pb_users_auth_"));
    }
}
