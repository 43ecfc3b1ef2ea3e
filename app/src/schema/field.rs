//! Fields of a collection: their kinds, options, JSON form and validation.

use serde_json::{Map, Value, json};

use super::ids;
use crate::validation::{ValidationErrors, msg};

/// PocketBase's field types and their options.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    Text {
        min: i64,
        max: i64,
        pattern: String,
        autogenerate_pattern: String,
        primary_key: bool,
    },
    Number {
        min: Option<f64>,
        max: Option<f64>,
        only_int: bool,
    },
    Bool,
    Email {
        except_domains: Vec<String>,
        only_domains: Vec<String>,
    },
    Url {
        except_domains: Vec<String>,
        only_domains: Vec<String>,
    },
    Editor {
        max_size: i64,
        convert_urls: bool,
    },
    Date {
        min: String,
        max: String,
    },
    Autodate {
        on_create: bool,
        on_update: bool,
    },
    Select {
        values: Vec<String>,
        max_select: i64,
    },
    File {
        max_select: i64,
        max_size: i64,
        mime_types: Vec<String>,
        thumbs: Vec<String>,
        protected: bool,
    },
    Relation {
        collection_id: String,
        cascade_delete: bool,
        min_select: i64,
        max_select: i64,
    },
    Json {
        max_size: i64,
    },
    Password {
        min: i64,
        max: i64,
        pattern: String,
        cost: i64,
    },
    GeoPoint,
}

/// Every field type name, as PocketBase spells it.
pub const FIELD_TYPES: &[&str] = &[
    "text", "number", "bool", "email", "url", "editor", "date", "autodate", "select", "file",
    "relation", "json", "password", "geoPoint",
];

/// Names no field may take: they are keys of the record JSON itself.
pub const RESERVED_FIELD_NAMES: &[&str] = &[
    "expand",
    "collectionId",
    "collectionName",
    "passwordConfirm",
    "oldPassword",
];

impl FieldKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::Text { .. } => "text",
            FieldKind::Number { .. } => "number",
            FieldKind::Bool => "bool",
            FieldKind::Email { .. } => "email",
            FieldKind::Url { .. } => "url",
            FieldKind::Editor { .. } => "editor",
            FieldKind::Date { .. } => "date",
            FieldKind::Autodate { .. } => "autodate",
            FieldKind::Select { .. } => "select",
            FieldKind::File { .. } => "file",
            FieldKind::Relation { .. } => "relation",
            FieldKind::Json { .. } => "json",
            FieldKind::Password { .. } => "password",
            FieldKind::GeoPoint => "geoPoint",
        }
    }

    /// The default options of a type, or `None` for an unknown type.
    pub fn default_for(type_name: &str) -> Option<FieldKind> {
        Some(match type_name {
            "text" => FieldKind::Text {
                min: 0,
                max: 0,
                pattern: String::new(),
                autogenerate_pattern: String::new(),
                primary_key: false,
            },
            "number" => FieldKind::Number {
                min: None,
                max: None,
                only_int: false,
            },
            "bool" => FieldKind::Bool,
            "email" => FieldKind::Email {
                except_domains: vec![],
                only_domains: vec![],
            },
            "url" => FieldKind::Url {
                except_domains: vec![],
                only_domains: vec![],
            },
            "editor" => FieldKind::Editor {
                max_size: 0,
                convert_urls: false,
            },
            "date" => FieldKind::Date {
                min: String::new(),
                max: String::new(),
            },
            "autodate" => FieldKind::Autodate {
                on_create: false,
                on_update: false,
            },
            "select" => FieldKind::Select {
                values: vec![],
                max_select: 0,
            },
            "file" => FieldKind::File {
                max_select: 0,
                max_size: 0,
                mime_types: vec![],
                thumbs: vec![],
                protected: false,
            },
            "relation" => FieldKind::Relation {
                collection_id: String::new(),
                cascade_delete: false,
                min_select: 0,
                max_select: 0,
            },
            "json" => FieldKind::Json { max_size: 0 },
            "password" => FieldKind::Password {
                min: 0,
                max: 0,
                pattern: String::new(),
                cost: 0,
            },
            "geoPoint" => FieldKind::GeoPoint,
            _ => return None,
        })
    }

    /// True for select, file and relation fields that hold more than one value; they are
    /// stored as JSON arrays.
    pub fn is_multiple(&self) -> bool {
        match self {
            FieldKind::Select { max_select, .. }
            | FieldKind::File { max_select, .. }
            | FieldKind::Relation { max_select, .. } => *max_select > 1,
            _ => false,
        }
    }
}

/// One field of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub id: String,
    pub name: String,
    pub system: bool,
    pub hidden: bool,
    pub presentable: bool,
    pub required: bool,
    pub help: String,
    pub kind: FieldKind,
}

/// Reading helpers for loosely typed JSON options: a missing key or `null` gives the default,
/// a value of the wrong type is reported.
struct Opts<'a> {
    obj: &'a Map<String, Value>,
    errors: ValidationErrors,
}

impl<'a> Opts<'a> {
    fn bool(&mut self, key: &str, default: bool) -> bool {
        match self.obj.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.errors
                    .add(&[key], "validation_invalid_value", msg::INVALID_VALUE);
                default
            }
        }
    }

    fn int(&mut self, key: &str, default: i64) -> i64 {
        match self.obj.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => i,
                None => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => f as i64,
                    _ => {
                        self.errors
                            .add(&[key], "validation_invalid_value", msg::INVALID_VALUE);
                        default
                    }
                },
            },
            Some(_) => {
                self.errors
                    .add(&[key], "validation_invalid_value", msg::INVALID_VALUE);
                default
            }
        }
    }

    fn opt_num(&mut self, key: &str) -> Option<f64> {
        match self.obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(_) => {
                self.errors
                    .add(&[key], "validation_invalid_value", msg::INVALID_VALUE);
                None
            }
        }
    }

    fn string(&mut self, key: &str) -> String {
        match self.obj.get(key) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                self.errors
                    .add(&[key], "validation_invalid_value", msg::INVALID_VALUE);
                String::new()
            }
        }
    }

    fn strings(&mut self, key: &str) -> Vec<String> {
        match self.obj.get(key) {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    match it {
                        Value::String(s) => out.push(s.clone()),
                        _ => {
                            self.errors
                                .add(&[key], "validation_invalid_value", msg::INVALID_VALUE);
                            return vec![];
                        }
                    }
                }
                out
            }
            Some(_) => {
                self.errors
                    .add(&[key], "validation_invalid_value", msg::INVALID_VALUE);
                vec![]
            }
        }
    }
}

/// A field definition could not even be read (not an object, unknown type): PocketBase answers
/// such input with a bare 400 "Failed to load the submitted data due to invalid formatting."
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid field definition: {0}")]
pub struct MalformedField(pub String);

impl Field {
    /// Reads a field from its JSON form. Options of the wrong JSON type are reported as
    /// validation errors (keyed by option name); unknown types are [`MalformedField`].
    pub fn from_json(v: &Value) -> Result<(Field, ValidationErrors), MalformedField> {
        let obj = v
            .as_object()
            .ok_or_else(|| MalformedField("a field must be an object".into()))?;
        let type_name = obj
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| MalformedField("a field needs a type".into()))?;
        let base = FieldKind::default_for(type_name)
            .ok_or_else(|| MalformedField(format!("unknown field type {type_name:?}")))?;
        let mut o = Opts {
            obj,
            errors: ValidationErrors::new(),
        };
        let kind = match base {
            FieldKind::Text { .. } => FieldKind::Text {
                min: o.int("min", 0),
                max: o.int("max", 0),
                pattern: o.string("pattern"),
                autogenerate_pattern: o.string("autogeneratePattern"),
                primary_key: o.bool("primaryKey", false),
            },
            FieldKind::Number { .. } => FieldKind::Number {
                min: o.opt_num("min"),
                max: o.opt_num("max"),
                only_int: o.bool("onlyInt", false),
            },
            FieldKind::Bool => FieldKind::Bool,
            FieldKind::Email { .. } => FieldKind::Email {
                except_domains: o.strings("exceptDomains"),
                only_domains: o.strings("onlyDomains"),
            },
            FieldKind::Url { .. } => FieldKind::Url {
                except_domains: o.strings("exceptDomains"),
                only_domains: o.strings("onlyDomains"),
            },
            FieldKind::Editor { .. } => FieldKind::Editor {
                max_size: o.int("maxSize", 0),
                convert_urls: o.bool("convertURLs", false),
            },
            FieldKind::Date { .. } => {
                // Normalised to PocketBase's UTC format when valid (invalid values are reported
                // by `validate`).
                let norm = |s: String| match ids::parse_datetime(&s) {
                    Some(t) => ids::format_datetime(t),
                    None => s,
                };
                FieldKind::Date {
                    min: norm(o.string("min")),
                    max: norm(o.string("max")),
                }
            }
            FieldKind::Autodate { .. } => FieldKind::Autodate {
                on_create: o.bool("onCreate", false),
                on_update: o.bool("onUpdate", false),
            },
            FieldKind::Select { .. } => FieldKind::Select {
                values: o.strings("values"),
                max_select: o.int("maxSelect", 0),
            },
            FieldKind::File { .. } => FieldKind::File {
                max_select: o.int("maxSelect", 0),
                max_size: o.int("maxSize", 0),
                mime_types: o.strings("mimeTypes"),
                thumbs: o.strings("thumbs"),
                protected: o.bool("protected", false),
            },
            FieldKind::Relation { .. } => FieldKind::Relation {
                collection_id: o.string("collectionId"),
                cascade_delete: o.bool("cascadeDelete", false),
                min_select: o.int("minSelect", 0),
                max_select: o.int("maxSelect", 0),
            },
            FieldKind::Json { .. } => FieldKind::Json {
                max_size: o.int("maxSize", 0),
            },
            FieldKind::Password { .. } => FieldKind::Password {
                min: o.int("min", 0),
                max: o.int("max", 0),
                pattern: o.string("pattern"),
                cost: o.int("cost", 0),
            },
            FieldKind::GeoPoint => FieldKind::GeoPoint,
        };
        let field = Field {
            id: o.string("id"),
            name: o.string("name"),
            system: o.bool("system", false),
            hidden: o.bool("hidden", false),
            presentable: o.bool("presentable", false),
            required: o.bool("required", false),
            help: o.string("help"),
            kind,
        };
        Ok((field, o.errors))
    }

    /// The field's JSON form, as the collections API returns it.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.kind.type_name()));
        m.insert("system".into(), json!(self.system));
        m.insert("hidden".into(), json!(self.hidden));
        m.insert("presentable".into(), json!(self.presentable));
        if !matches!(self.kind, FieldKind::Autodate { .. }) {
            m.insert("required".into(), json!(self.required));
            m.insert("help".into(), json!(self.help));
        }
        let mut put = |k: &str, v: Value| {
            m.insert(k.into(), v);
        };
        match &self.kind {
            FieldKind::Text {
                min,
                max,
                pattern,
                autogenerate_pattern,
                primary_key,
            } => {
                put("min", json!(min));
                put("max", json!(max));
                put("pattern", json!(pattern));
                put("autogeneratePattern", json!(autogenerate_pattern));
                put("primaryKey", json!(primary_key));
            }
            FieldKind::Number { min, max, only_int } => {
                put("min", json!(min));
                put("max", json!(max));
                put("onlyInt", json!(only_int));
            }
            FieldKind::Bool | FieldKind::GeoPoint => {}
            FieldKind::Email {
                except_domains,
                only_domains,
            }
            | FieldKind::Url {
                except_domains,
                only_domains,
            } => {
                put("exceptDomains", json!(except_domains));
                put("onlyDomains", json!(only_domains));
            }
            FieldKind::Editor {
                max_size,
                convert_urls,
            } => {
                put("maxSize", json!(max_size));
                put("convertURLs", json!(convert_urls));
            }
            FieldKind::Date { min, max } => {
                put("min", json!(min));
                put("max", json!(max));
            }
            FieldKind::Autodate {
                on_create,
                on_update,
            } => {
                put("onCreate", json!(on_create));
                put("onUpdate", json!(on_update));
            }
            FieldKind::Select { values, max_select } => {
                put("values", json!(values));
                put("maxSelect", json!(max_select));
            }
            FieldKind::File {
                max_select,
                max_size,
                mime_types,
                thumbs,
                protected,
            } => {
                put("maxSelect", json!(max_select));
                put("maxSize", json!(max_size));
                put("mimeTypes", json!(mime_types));
                put("thumbs", json!(thumbs));
                put("protected", json!(protected));
            }
            FieldKind::Relation {
                collection_id,
                cascade_delete,
                min_select,
                max_select,
            } => {
                put("collectionId", json!(collection_id));
                put("cascadeDelete", json!(cascade_delete));
                put("minSelect", json!(min_select));
                put("maxSelect", json!(max_select));
            }
            FieldKind::Json { max_size } => put("maxSize", json!(max_size)),
            FieldKind::Password {
                min,
                max,
                pattern,
                cost,
            } => {
                put("min", json!(min));
                put("max", json!(max));
                put("pattern", json!(pattern));
                put("cost", json!(cost));
            }
        }
        Value::Object(m)
    }

    /// Gives the field PocketBase's id when it has none.
    pub fn ensure_id(&mut self) {
        if self.id.is_empty() {
            self.id = ids::field_id(self.kind.type_name(), &self.name);
        }
    }

    /// Checks the field's own options (not its relation to other fields or collections).
    pub fn validate(&self) -> ValidationErrors {
        let mut e = ValidationErrors::new();
        let name_re = field_name_regex();
        if self.name.is_empty() {
            e.add(&["name"], "validation_required", msg::REQUIRED);
        } else if self.name.len() > 100 || !name_re.is_match(&self.name) {
            e.add(
                &["name"],
                "validation_match_invalid",
                "Must be in a valid format.",
            );
        } else if RESERVED_FIELD_NAMES.contains(&self.name.as_str()) {
            e.add(
                &["name"],
                "validation_not_in_invalid",
                "Must not be in list.",
            );
        }
        if self.id.len() > 100 {
            e.add(
                &["id"],
                "validation_length_too_long",
                "The length must be no more than 100.",
            );
        }
        let non_negative = |e: &mut ValidationErrors, key: &str, v: i64| {
            if v < 0 {
                e.add_with_params(
                    &[key],
                    "validation_min_greater_equal_than_required",
                    "Must be no less than 0.",
                    Some(json!({"threshold": 0})),
                );
            }
        };
        match &self.kind {
            FieldKind::Text {
                min,
                max,
                pattern,
                autogenerate_pattern,
                ..
            } => {
                non_negative(&mut e, "min", *min);
                non_negative(&mut e, "max", *max);
                if *max > 0 && *min > *max {
                    e.add_with_params(
                        &["max"],
                        "validation_min_greater_equal_than_required",
                        &format!("Must be no less than {min}."),
                        Some(json!({"threshold": min})),
                    );
                }
                if !pattern.is_empty() && regex::Regex::new(pattern).is_err() {
                    e.add(
                        &["pattern"],
                        "validation_invalid_regex",
                        "Invalid regular expression.",
                    );
                }
                if !autogenerate_pattern.is_empty()
                    && crate::schema::pattern::Generator::parse(autogenerate_pattern).is_err()
                {
                    e.add(
                        &["autogeneratePattern"],
                        "validation_invalid_regex",
                        "Invalid or unsupported generator pattern.",
                    );
                }
            }
            FieldKind::Number { min, max, .. } => {
                if let (Some(min), Some(max)) = (min, max)
                    && max < min
                {
                    e.add_with_params(
                        &["max"],
                        "validation_min_number_constraint",
                        &format!("Must be greater or equal than {}.", fmt_num(*min)),
                        Some(json!({"min": min})),
                    );
                }
            }
            FieldKind::Email {
                except_domains,
                only_domains,
            }
            | FieldKind::Url {
                except_domains,
                only_domains,
            } => {
                if !except_domains.is_empty() && !only_domains.is_empty() {
                    e.add(
                        &["onlyDomains"],
                        "validation_superfluous_only_domains",
                        "exceptDomains and onlyDomains cannot be set at the same time.",
                    );
                }
            }
            FieldKind::Editor { max_size, .. } | FieldKind::Json { max_size } => {
                non_negative(&mut e, "maxSize", *max_size)
            }
            FieldKind::Date { min, max } => {
                for (key, v) in [("min", min), ("max", max)] {
                    if !v.is_empty() && ids::parse_datetime(v).is_none() {
                        e.add(&[key], "validation_invalid_date", "Must be a valid date.");
                    }
                }
            }
            FieldKind::Select { values, max_select } => {
                if values.is_empty() {
                    e.add(&["values"], "validation_required", msg::REQUIRED);
                }
                let mut seen = std::collections::HashSet::new();
                if values.iter().any(|v| !seen.insert(v)) {
                    e.add(
                        &["values"],
                        "validation_duplicated_values",
                        "The values must be unique.",
                    );
                }
                non_negative(&mut e, "maxSelect", *max_select);
            }
            FieldKind::File {
                max_select,
                max_size,
                thumbs,
                ..
            } => {
                non_negative(&mut e, "maxSelect", *max_select);
                non_negative(&mut e, "maxSize", *max_size);
                let thumb_re = thumb_regex();
                if thumbs.iter().any(|t| !thumb_re.is_match(t)) {
                    e.add(
                        &["thumbs"],
                        "validation_invalid_thumb_format",
                        "Invalid thumb format.",
                    );
                }
            }
            FieldKind::Relation {
                collection_id,
                min_select,
                max_select,
                ..
            } => {
                if collection_id.is_empty() {
                    e.add(&["collectionId"], "validation_required", msg::REQUIRED);
                }
                non_negative(&mut e, "minSelect", *min_select);
                non_negative(&mut e, "maxSelect", *max_select);
                if *max_select > 0 && min_select > max_select {
                    e.add_with_params(
                        &["maxSelect"],
                        "validation_min_greater_equal_than_required",
                        &format!("Must be no less than {min_select}."),
                        Some(json!({"threshold": min_select})),
                    );
                }
            }
            FieldKind::Password {
                min,
                max,
                pattern,
                cost,
            } => {
                non_negative(&mut e, "min", *min);
                if *max > 71 {
                    e.add_with_params(
                        &["max"],
                        "validation_max_less_equal_than_required",
                        "Must be no greater than 71.",
                        Some(json!({"threshold": 71})),
                    );
                }
                if *cost != 0 && !(4..=31).contains(cost) {
                    e.add(&["cost"], "validation_invalid_value", msg::INVALID_VALUE);
                }
                if !pattern.is_empty() && regex::Regex::new(pattern).is_err() {
                    e.add(
                        &["pattern"],
                        "validation_invalid_regex",
                        "Invalid regular expression.",
                    );
                }
            }
            FieldKind::Autodate {
                on_create,
                on_update,
            } => {
                if !on_create && !on_update {
                    let m = "Either onCreate or onUpdate must be enabled.";
                    e.add(&["onCreate"], "validation_required", m);
                    e.add(&["onUpdate"], "validation_required", m);
                }
            }
            FieldKind::Bool | FieldKind::GeoPoint => {}
        }
        e
    }
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn field_name_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"^\w+$").expect("static regex"))
}

fn thumb_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"^(\d+)x(\d+)(t|b|f)?$").expect("static regex"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Field {
        let (mut f, errs) = Field::from_json(&v).expect("parses");
        assert!(errs.is_empty(), "{errs:?}");
        f.ensure_id();
        f
    }

    #[test]
    fn every_type_round_trips_with_defaults() {
        for t in FIELD_TYPES {
            let f = parse(json!({"name": "f", "type": t}));
            assert_eq!(f.kind.type_name(), *t);
            assert_eq!(f.id, ids::field_id(t, "f"));
            let back = parse(f.to_json());
            assert_eq!(back, f, "{t}");
        }
    }

    #[test]
    fn options_are_kept() {
        let f = parse(
            json!({"name":"n","type":"number","min":1,"max":9.5,"onlyInt":true,"required":true}),
        );
        assert_eq!(
            f.kind,
            FieldKind::Number {
                min: Some(1.0),
                max: Some(9.5),
                only_int: true
            }
        );
        assert!(f.required);
        let j = f.to_json();
        assert_eq!(j["max"], json!(9.5));
        let s = parse(json!({"name":"s","type":"select","values":["a","b"],"maxSelect":2}));
        assert!(s.kind.is_multiple());
    }

    #[test]
    fn autodate_has_no_required_or_help() {
        let f = parse(json!({"name":"created","type":"autodate","onCreate":true}));
        let j = f.to_json();
        assert!(j.get("required").is_none());
        assert!(j.get("help").is_none());
        assert_eq!(j["id"], "autodate2990389176");
    }

    #[test]
    fn unknown_type_and_wrong_shapes() {
        assert!(Field::from_json(&json!({"name":"a","type":"nope"})).is_err());
        assert!(Field::from_json(&json!("text")).is_err());
        let (_, errs) = Field::from_json(&json!({"name":"a","type":"text","min":"x"})).unwrap();
        assert!(errs.has("min"));
    }

    #[test]
    fn validation_codes() {
        let codes = |v: Value| parse_unchecked(v).validate().into_value();
        assert_eq!(
            codes(json!({"name":"bad-name","type":"text"}))["name"]["code"],
            "validation_match_invalid"
        );
        assert_eq!(
            codes(json!({"name":"expand","type":"text"}))["name"]["code"],
            "validation_not_in_invalid"
        );
        assert_eq!(
            codes(json!({"name":"","type":"text"}))["name"]["code"],
            "validation_required"
        );
        assert_eq!(
            codes(json!({"name":"r","type":"relation"}))["collectionId"]["code"],
            "validation_required"
        );
        assert_eq!(
            codes(json!({"name":"s","type":"select"}))["values"]["code"],
            "validation_required"
        );
        let n = codes(json!({"name":"n","type":"number","min":5,"max":1}));
        assert_eq!(n["max"]["code"], "validation_min_number_constraint");
        assert_eq!(n["max"]["message"], "Must be greater or equal than 5.");
        assert_eq!(
            codes(json!({"name":"t","type":"text","pattern":"("}))["pattern"]["code"],
            "validation_invalid_regex"
        );
        assert_eq!(
            codes(json!({"name":"f","type":"file","thumbs":["100"]}))["thumbs"]["code"],
            "validation_invalid_thumb_format"
        );
        assert!(
            parse_unchecked(json!({"name":"ok_1","type":"text"}))
                .validate()
                .is_empty()
        );
    }

    fn parse_unchecked(v: Value) -> Field {
        Field::from_json(&v).expect("parses").0
    }
}
