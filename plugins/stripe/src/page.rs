//! The dashboard page `/_/plugins/stripe/billing`: mode, the webhook endpoint to configure,
//! recent events and failures, the catalogue, subscriptions, and a resync button.

use std::sync::Arc;

use ferrobase_plugin::{Caller, ListOptions, PageRequest, Record, Result, escape_html as esc};

use crate::schema::*;
use crate::{Shared, api, api_version};

async fn rows(sh: &Shared, coll: &str, filter: &str, sort: &str, n: u64) -> Result<Vec<Record>> {
    Ok(sh
        .app
        .list(
            &Caller::system(),
            coll,
            ListOptions {
                filter: filter.into(),
                sort: sort.into(),
                per_page: n,
                skip_total: true,
                ..ListOptions::default()
            },
        )
        .await?
        .items)
}

fn table(class: &str, head: &[&str], body: Vec<Vec<String>>, empty: &str) -> String {
    let mut out = format!("<table class=\"data {class}\"><thead><tr>");
    for h in head {
        out.push_str(&format!("<th>{}</th>", esc(h)));
    }
    out.push_str("</tr></thead><tbody>");
    if body.is_empty() {
        out.push_str(&format!(
            "<tr><td colspan=\"{}\" class=\"muted\">{}</td></tr>",
            head.len(),
            esc(empty)
        ));
    }
    for r in body {
        out.push_str("<tr>");
        for c in r {
            out.push_str(&format!("<td>{}</td>", esc(&c)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

fn s(r: &Record, f: &str) -> String {
    match r.get(f) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

pub async fn render(sh: Arc<Shared>, req: PageRequest) -> Result<String> {
    let mut notice = String::new();
    let action = req
        .form
        .iter()
        .find(|(k, _)| k == "action")
        .map(|(_, v)| v.as_str());
    if req.method == "POST" && action == Some("resync") {
        notice = match api::resync(&sh).await {
            Ok(report) => format!(
                "<div class=\"notice stripe-resync-report\" role=\"status\">Resync done: {}</div>",
                esc(&report.to_string())
            ),
            Err(e) => format!(
                "<div class=\"error\" role=\"alert\">Resync failed: {}</div>",
                esc(&e.message)
            ),
        };
    }
    let app_url = sh.app.meta()["appURL"]
        .as_str()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    let events = rows(&sh, EVENTS, "", "-created", 20).await?;
    let failures = rows(&sh, EVENTS, "status = \"failed\"", "-updated", 20).await?;
    let products = rows(&sh, PRODUCTS, "", "name", 100).await?;
    let prices = rows(&sh, PRICES, "", "productId,created", 200).await?;
    let subs = rows(&sh, SUBSCRIPTIONS, "", "-updated", 50).await?;
    let ev_rows = |list: &[Record]| {
        list.iter()
            .map(|r| {
                vec![
                    s(r, "eventId"),
                    s(r, "type"),
                    s(r, "status"),
                    s(r, "note"),
                    s(r, "attempts"),
                    s(r, "updated"),
                ]
            })
            .collect::<Vec<_>>()
    };
    let csrf = esc(&req.csrf);
    Ok(format!(
        "{notice}<p class=\"stripe-mode\">Mode: <strong>{mode}</strong> · API version {ver} · webhook endpoint <code>{hook}</code></p>\
         <form method=\"post\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"action\" value=\"resync\">\
         <button type=\"submit\" class=\"btn btn-primary\">Resync from Stripe</button> <span class=\"muted\">Copies products, prices, customers and subscriptions; safe to rerun.</span></form>\
         <h2>Failures</h2>{fail}<h2>Recent events</h2>{ev}<h2>Products</h2>{prod}<h2>Prices</h2>{price}<h2>Subscriptions</h2>{sub}",
        mode = if sh.cfg.livemode { "live" } else { "test" },
        ver = esc(api_version()),
        hook = esc(&format!("{app_url}/api/stripe/webhook")),
        fail = table(
            "stripe-failures",
            &["Event", "Type", "Status", "Error", "Attempts", "At"],
            ev_rows(&failures),
            "No failed events."
        ),
        ev = table(
            "stripe-events",
            &["Event", "Type", "Status", "Note", "Attempts", "At"],
            ev_rows(&events),
            "No events yet."
        ),
        prod = table(
            "stripe-products",
            &["Product", "Name", "Active", "Plan (metadata)"],
            products
                .iter()
                .map(|r| vec![
                    s(r, "productId"),
                    s(r, "name"),
                    s(r, "active"),
                    r.get("metadata")
                        .and_then(|m| m.get("plan"))
                        .and_then(|p| p.as_str())
                        .unwrap_or("")
                        .to_string()
                ])
                .collect(),
            "No products: resync or wait for product events."
        ),
        price = table(
            "stripe-prices",
            &[
                "Price", "Product", "Amount", "Currency", "Interval", "Active"
            ],
            prices
                .iter()
                .map(|r| vec![
                    s(r, "priceId"),
                    s(r, "productId"),
                    s(r, "unitAmount"),
                    s(r, "currency"),
                    s(r, "interval"),
                    s(r, "active")
                ])
                .collect(),
            "No prices."
        ),
        sub = table(
            "stripe-subscriptions",
            &[
                "Subscription",
                "User",
                "Status",
                "Plan",
                "Period end",
                "Cancel at period end"
            ],
            subs.iter()
                .map(|r| vec![
                    s(r, "subscriptionId"),
                    s(r, "user"),
                    s(r, "status"),
                    s(r, "plan"),
                    s(r, "currentPeriodEnd"),
                    s(r, "cancelAtPeriodEnd")
                ])
                .collect(),
            "No subscriptions."
        ),
    ))
}
