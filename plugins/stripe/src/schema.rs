//! The collections the plugin owns and the fields it adds to the auth collection.
//!
//! Every billing row carries `lastEventAt`: the `created` time (Unix seconds) of the newest
//! Stripe event applied to it, or of the resync that wrote it. An event older than that is
//! not applied (see `sync`).

use serde_json::{Value, json};

pub const CUSTOMERS: &str = "stripe_customers";
pub const PRODUCTS: &str = "stripe_products";
pub const PRICES: &str = "stripe_prices";
pub const SUBSCRIPTIONS: &str = "stripe_subscriptions";
pub const ITEMS: &str = "stripe_subscription_items";
pub const PAYMENTS: &str = "stripe_payments";
pub const EVENTS: &str = "stripe_events";

/// The fields added to the auth collection (fixed ids: an edit that leaves them out keeps them).
pub const PLAN: &str = "plan";
pub const SUBSCRIPTION_STATUS: &str = "subscriptionStatus";

/// Rules of rows that belong to one user: the user reads their own, nobody else does, and
/// only the plugin (and superusers) write.
const OWN: &str = "user != \"\" && user = @request.auth.id";

fn text(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "type": "text"})
}
fn required_text(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "type": "text", "required": true})
}
fn boolean(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "type": "bool"})
}
fn number(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "type": "number", "onlyInt": true})
}
fn date(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "type": "date"})
}
fn json_field(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "type": "json", "maxSize": 0})
}
fn user(id: &str, users_id: &str, required: bool) -> Value {
    json!({"id": id, "name": "user", "type": "relation", "collectionId": users_id,
           "maxSelect": 1, "cascadeDelete": false, "required": required})
}
fn autodates(prefix: &str) -> [Value; 2] {
    [
        json!({"id": format!("autodate_{prefix}_c"), "name": "created", "type": "autodate", "onCreate": true, "onUpdate": false}),
        json!({"id": format!("autodate_{prefix}_u"), "name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true}),
    ]
}

fn collection(
    id: &str,
    name: &str,
    read_rule: Option<&str>,
    mut fields: Vec<Value>,
    indexes: Vec<String>,
) -> Value {
    fields.extend(autodates(&name.replace("stripe_", "st_")));
    json!({
        "id": id, "name": name, "type": "base",
        "listRule": read_rule, "viewRule": read_rule,
        "createRule": null, "updateRule": null, "deleteRule": null,
        "fields": fields, "indexes": indexes,
    })
}

fn unique(name: &str, coll: &str, field: &str) -> String {
    format!("CREATE UNIQUE INDEX `{name}` ON `{coll}` (`{field}`)")
}
fn index(name: &str, coll: &str, field: &str) -> String {
    format!("CREATE INDEX `{name}` ON `{coll}` (`{field}`)")
}

/// The owned collections; `users_id` is the auth collection's id.
pub fn collections(users_id: &str) -> Vec<Value> {
    vec![
        collection(
            "pbc_stripe_cust01",
            CUSTOMERS,
            Some(OWN),
            vec![
                user("rel_stc_user", users_id, true),
                required_text("text_stc_customer", "customerId"),
                text("text_stc_email", "email"),
                boolean("bool_stc_livemode", "livemode"),
                boolean("bool_stc_deleted", "deleted"),
                number("num_stc_event", "lastEventAt"),
            ],
            vec![
                unique("idx_stripe_cust_user", CUSTOMERS, "user"),
                unique("idx_stripe_cust_id", CUSTOMERS, "customerId"),
            ],
        ),
        collection(
            "pbc_stripe_prod01",
            PRODUCTS,
            Some(""),
            vec![
                required_text("text_stp_product", "productId"),
                text("text_stp_name", "name"),
                text("text_stp_desc", "description"),
                boolean("bool_stp_active", "active"),
                boolean("bool_stp_deleted", "deleted"),
                json_field("json_stp_images", "images"),
                json_field("json_stp_meta", "metadata"),
                boolean("bool_stp_livemode", "livemode"),
                number("num_stp_event", "lastEventAt"),
            ],
            vec![unique("idx_stripe_prod_id", PRODUCTS, "productId")],
        ),
        collection(
            "pbc_stripe_price01",
            PRICES,
            Some(""),
            vec![
                required_text("text_stpr_price", "priceId"),
                // the product's id as text, not a relation: a price may arrive first
                text("text_stpr_product", "productId"),
                boolean("bool_stpr_active", "active"),
                boolean("bool_stpr_deleted", "deleted"),
                text("text_stpr_currency", "currency"),
                // null for tiered, metered-without-amount and customer-chosen prices
                json_field("json_stpr_amount", "unitAmount"),
                text("text_stpr_amountdec", "unitAmountDecimal"),
                text("text_stpr_type", "type"),
                text("text_stpr_scheme", "billingScheme"),
                text("text_stpr_tiers", "tiersMode"),
                text("text_stpr_interval", "interval"),
                number("num_stpr_icount", "intervalCount"),
                text("text_stpr_usage", "usageType"),
                number("num_stpr_trial", "trialPeriodDays"),
                text("text_stpr_lookup", "lookupKey"),
                text("text_stpr_nick", "nickname"),
                json_field("json_stpr_meta", "metadata"),
                boolean("bool_stpr_livemode", "livemode"),
                number("num_stpr_event", "lastEventAt"),
            ],
            vec![
                unique("idx_stripe_price_id", PRICES, "priceId"),
                index("idx_stripe_price_prod", PRICES, "productId"),
            ],
        ),
        collection(
            "pbc_stripe_subs01",
            SUBSCRIPTIONS,
            Some(OWN),
            vec![
                required_text("text_sts_sub", "subscriptionId"),
                text("text_sts_customer", "customerId"),
                user("rel_sts_user", users_id, false),
                text("text_sts_status", "status"),
                // the first item's price and product, and the plan they give (see docs/stripe.md)
                text("text_sts_price", "priceId"),
                text("text_sts_product", "productId"),
                text("text_sts_plan", "plan"),
                number("num_sts_qty", "quantity"),
                // the billing period from the items (Stripe moved it there in 2025-03-31.basil)
                date("date_sts_pstart", "currentPeriodStart"),
                date("date_sts_pend", "currentPeriodEnd"),
                boolean("bool_sts_cape", "cancelAtPeriodEnd"),
                date("date_sts_cancelat", "cancelAt"),
                date("date_sts_canceled", "canceledAt"),
                text("text_sts_creason", "cancellationReason"),
                date("date_sts_ended", "endedAt"),
                date("date_sts_tstart", "trialStart"),
                date("date_sts_tend", "trialEnd"),
                date("date_sts_start", "startDate"),
                date("date_sts_created", "stripeCreated"),
                boolean("bool_sts_paused", "paused"),
                json_field("json_sts_meta", "metadata"),
                boolean("bool_sts_livemode", "livemode"),
                number("num_sts_event", "lastEventAt"),
            ],
            vec![
                unique("idx_stripe_sub_id", SUBSCRIPTIONS, "subscriptionId"),
                index("idx_stripe_sub_user", SUBSCRIPTIONS, "user"),
                index("idx_stripe_sub_cust", SUBSCRIPTIONS, "customerId"),
                // a product or price event recomputes the plan of its subscriptions
                index("idx_stripe_sub_price", SUBSCRIPTIONS, "priceId"),
                index("idx_stripe_sub_prod", SUBSCRIPTIONS, "productId"),
            ],
        ),
        collection(
            "pbc_stripe_item01",
            ITEMS,
            Some(OWN),
            vec![
                required_text("text_sti_item", "itemId"),
                required_text("text_sti_sub", "subscriptionId"),
                user("rel_sti_user", users_id, false),
                text("text_sti_price", "priceId"),
                text("text_sti_product", "productId"),
                number("num_sti_qty", "quantity"),
                date("date_sti_pstart", "currentPeriodStart"),
                date("date_sti_pend", "currentPeriodEnd"),
                json_field("json_sti_meta", "metadata"),
                number("num_sti_event", "lastEventAt"),
            ],
            vec![
                unique("idx_stripe_item_id", ITEMS, "itemId"),
                index("idx_stripe_item_sub", ITEMS, "subscriptionId"),
            ],
        ),
        collection(
            "pbc_stripe_pay001",
            PAYMENTS,
            Some(OWN),
            vec![
                // a Checkout Session (cs_...) of a one-time payment, or an invoice (in_...)
                required_text("text_stpay_ref", "stripeId"),
                text("text_stpay_kind", "kind"),
                user("rel_stpay_user", users_id, false),
                text("text_stpay_customer", "customerId"),
                text("text_stpay_sub", "subscriptionId"),
                text("text_stpay_pi", "paymentIntentId"),
                text("text_stpay_status", "status"),
                number("num_stpay_amount", "amount"),
                text("text_stpay_currency", "currency"),
                text("text_stpay_url", "url"),
                json_field("json_stpay_meta", "metadata"),
                boolean("bool_stpay_livemode", "livemode"),
                number("num_stpay_event", "lastEventAt"),
            ],
            vec![
                unique("idx_stripe_pay_ref", PAYMENTS, "stripeId"),
                index("idx_stripe_pay_user", PAYMENTS, "user"),
            ],
        ),
        collection(
            "pbc_stripe_evt001",
            EVENTS,
            None,
            vec![
                required_text("text_ste_event", "eventId"),
                text("text_ste_type", "type"),
                number("num_ste_created", "eventCreated"),
                boolean("bool_ste_livemode", "livemode"),
                // applied | ignored | failed (a failed event is applied when Stripe retries it)
                text("text_ste_status", "status"),
                text("text_ste_object", "objectId"),
                text("text_ste_note", "note"),
                number("num_ste_attempts", "attempts"),
            ],
            vec![unique("idx_stripe_evt_id", EVENTS, "eventId")],
        ),
    ]
}

/// The fields added to the auth collection: what API rules gate on.
pub fn user_fields() -> Vec<Value> {
    vec![
        json!({"id": "text_stripe_plan", "name": PLAN, "type": "text"}),
        json!({"id": "text_stripe_substatus", "name": SUBSCRIPTION_STATUS, "type": "text"}),
    ]
}
