//! The fixture plugin: exercises the plugin interface end to end. It uses `ferrobase-plugin`
//! only (never the app crate), as every plugin must.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ferrobase_plugin::axum::body::Bytes;
use ferrobase_plugin::axum::routing::{get, post};
use ferrobase_plugin::axum::{Json, Router};
use ferrobase_plugin::serde_json::{Map, Value, json};
use ferrobase_plugin::{Action, App, Caller, Error, Plugin, RequestCaller, SettingField, Setup};

/// The fixture plugin.
#[derive(Default)]
pub struct Fixture {
    events: Arc<Mutex<Vec<String>>>,
    ticks: Arc<AtomicU64>,
}

fn text(data: &Map<String, Value>, key: &str) -> String {
    data.get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

impl Plugin for Fixture {
    fn name(&self) -> &str {
        "fixture"
    }

    fn settings(&self) -> Vec<SettingField> {
        vec![
            SettingField::new("apiKey").secret().about("A secret."),
            SettingField::new("version")
                .default_value(json!(1))
                .about("Which declaration of fixture_notes to use."),
        ]
    }

    fn setup(&self, s: &mut Setup) -> ferrobase_plugin::Result<()> {
        let version = s
            .app()
            .settings()
            .get("version")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let mut fields = vec![json!({"id": "text_fixture_ttl", "name": "title", "type": "text"})];
        if version >= 2 {
            fields.push(json!({"id": "text_fixture_bdy", "name": "body", "type": "text"}));
        }
        s.collection(json!({
            "id": "pbc_fixture_note1", "name": "fixture_notes", "type": "base",
            "listRule": "", "viewRule": "", "createRule": "@request.auth.id != ''",
            "updateRule": null, "deleteRule": null, "fields": fields,
        }));
        s.field(
            "users",
            json!({"id": "text_fixture_plan", "name": "plan", "type": "text"}),
        );
        s.before_write("fixture_notes", |w| {
            if w.action == Action::Delete {
                return Ok(());
            }
            match text(w.data, "title").as_str() {
                "forbidden" => Err(Error::validation(
                    "Failed to create record.",
                    "title",
                    "validation_fixture_forbidden",
                    "This title is not allowed.",
                )),
                "shout" => {
                    w.data.insert("title".into(), json!("SHOUT"));
                    Ok(())
                }
                _ => Ok(()),
            }
        });
        let events = self.events.clone();
        s.on_record("fixture_notes", move |_app, ev| {
            let events = events.clone();
            async move {
                let title = ev.record.get_str("title").unwrap_or("").to_string();
                if title == "crash" {
                    panic!("the fixture's handler crashes on purpose");
                }
                let mut g = events.lock().map_err(|_| Error::internal())?;
                g.push(format!("{:?}:{title}", ev.action));
                Ok(())
            }
        });
        let ticks = self.ticks.clone();
        s.cron("fixture_tick", "0 0 1 1 *", move |_app| {
            let ticks = ticks.clone();
            async move {
                ticks.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
        s.command(
            "fixture-hello",
            "Prints the collections count",
            |app: App, args| async move {
                println!(
                    "hello {} collections {}",
                    args.join(" "),
                    app.collections().len()
                );
                Ok(())
            },
        );
        s.page("hello", "Fixture", |_app, req| async move {
            Ok(format!(
                "<p class=\"fixture-hello\">Hello, {}</p>",
                ferrobase_plugin::escape_html(&req.superuser)
            ))
        });
        let (events, ticks) = (self.events.clone(), self.ticks.clone());
        s.routes(
            Router::new()
                .route(
                    "/api/fixture/events",
                    get(move || {
                        let events = events.clone();
                        async move { Json(json!(events.lock().map(|g| g.clone()).unwrap_or_default())) }
                    }),
                )
                .route(
                    "/api/fixture/ticks",
                    get(move || {
                        let ticks = ticks.clone();
                        async move { Json(json!(ticks.load(Ordering::SeqCst))) }
                    }),
                )
                .route("/api/fixture/raw", post(|body: Bytes| async move { body }))
                .route(
                    "/api/fixture/key",
                    get(|app: App| async move {
                        Json(json!({"set": app.settings().get("apiKey").and_then(Value::as_str) == Some("s3cret-XYZ")}))
                    }),
                )
                .route(
                    "/api/fixture/as-caller",
                    post(|app: App, RequestCaller(who): RequestCaller| async move {
                        let mut data = Map::new();
                        data.insert("title".into(), json!("by-caller"));
                        let r = app.create(&who, "fixture_notes", data).await?;
                        Ok::<_, Error>(Json(json!({"id": r.id()})))
                    }),
                )
                .route(
                    "/api/fixture/tx",
                    post(|app: App, Json(body): Json<Value>| async move {
                        let fail = body["fail"].as_bool().unwrap_or(false);
                        let n = app
                            .transaction(&Caller::system(), move |tx| {
                                for t in ["tx-a", "tx-b"] {
                                    let mut d = Map::new();
                                    d.insert("title".into(), json!(t));
                                    tx.create("fixture_notes", d)?;
                                }
                                if fail {
                                    return Err(Error::bad_request("The fixture failed on purpose."));
                                }
                                Ok(2u32)
                            })
                            .await?;
                        Ok::<_, Error>(Json(json!({"written": n})))
                    }),
                ),
        );
        Ok(())
    }
}
