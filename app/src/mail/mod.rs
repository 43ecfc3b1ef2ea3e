//! Outgoing mail: SMTP through lettre, configured by the `smtp` settings (or, in `--dev`
//! mode with SMTP disabled, printed to the log instead of sent).

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

/// Errors of sending mail.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail is not configured (enable SMTP in the settings)")]
    NotConfigured,
    #[error("invalid address: {0}")]
    Address(String),
    #[error("could not build the message: {0}")]
    Build(String),
    #[error("SMTP: {0}")]
    Smtp(String),
}

/// A message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub html: String,
}

/// Strips tags for the plain-text part.
fn plain(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// SMTP settings from the environment (`FERROBASE_SMTP_HOST`, `_PORT`, `_USERNAME`,
/// `_PASSWORD`, `_TLS`), which take precedence over the stored settings when the host is set:
/// secrets can stay out of the database.
fn smtp_from_env() -> Option<Value> {
    let host = std::env::var("FERROBASE_SMTP_HOST")
        .ok()
        .filter(|h| !h.is_empty())?;
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    Some(serde_json::json!({
        "enabled": true,
        "host": host,
        "port": var("FERROBASE_SMTP_PORT").parse::<u64>().unwrap_or(587),
        "username": var("FERROBASE_SMTP_USERNAME"),
        "password": var("FERROBASE_SMTP_PASSWORD"),
        "tls": matches!(var("FERROBASE_SMTP_TLS").as_str(), "1" | "true"),
    }))
}

/// Sends `mail` with the current settings. `dev`: when SMTP is disabled, log it instead.
pub async fn send(settings: &Value, dev: bool, mail: &Mail) -> Result<(), MailError> {
    let env_smtp = smtp_from_env();
    let smtp = env_smtp.as_ref().unwrap_or(&settings["smtp"]);
    let meta = &settings["meta"];
    if !smtp["enabled"].as_bool().unwrap_or(false) {
        if dev {
            // Development aid: the whole mail, links included, goes to the log.
            tracing::info!(to = %mail.to, subject = %mail.subject, body = %plain(&mail.html), "mail (dev mode, not sent)");
            return Ok(());
        }
        return Err(MailError::NotConfigured);
    }
    let from: Mailbox = format!(
        "{} <{}>",
        meta["senderName"].as_str().unwrap_or("Support"),
        meta["senderAddress"]
            .as_str()
            .unwrap_or("support@example.com")
    )
    .parse()
    .map_err(|e: lettre::address::AddressError| MailError::Address(e.to_string()))?;
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::Address(e.to_string()))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(plain(&mail.html)),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(mail.html.clone()),
                ),
        )
        .map_err(|e| MailError::Build(e.to_string()))?;
    let host = smtp["host"].as_str().unwrap_or("localhost").to_string();
    let port = smtp["port"].as_u64().unwrap_or(587) as u16;
    let tls = smtp["tls"].as_bool().unwrap_or(false);
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host).port(port);
    let params = TlsParameters::new(host.clone()).map_err(|e| MailError::Smtp(e.to_string()))?;
    builder = if tls {
        // Implicit TLS (port 465 style).
        builder.tls(Tls::Wrapper(params))
    } else {
        // STARTTLS when the server offers it.
        builder.tls(Tls::Opportunistic(params))
    };
    if let (Some(user), Some(pass)) = (smtp["username"].as_str(), smtp["password"].as_str())
        && !user.is_empty()
    {
        builder = builder.credentials(Credentials::new(user.to_string(), pass.to_string()));
    }
    if let Some(local) = smtp["localName"].as_str().filter(|s| !s.is_empty()) {
        builder = builder.hello_name(lettre::transport::smtp::extension::ClientId::Domain(
            local.to_string(),
        ));
    }
    let transport = builder
        .timeout(Some(std::time::Duration::from_secs(30)))
        .build();
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| MailError::Smtp(e.to_string()))
}

/// Replaces PocketBase's template placeholders (`{APP_NAME}`, `{APP_URL}`, `{TOKEN}`, …).
/// Values are HTML-escaped: they land in HTML bodies.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), &escape_html(v));
    }
    out
}

/// Escapes text for HTML.
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_escapes() {
        let s = fill(
            "<a href=\"{APP_URL}/x/{TOKEN}\">{APP_NAME}</a>",
            &[
                ("APP_URL", "http://h"),
                ("TOKEN", "a.b"),
                ("APP_NAME", "<Acme>"),
            ],
        );
        assert_eq!(s, "<a href=\"http://h/x/a.b\">&lt;Acme&gt;</a>");
        assert_eq!(plain("<p>Hi</p>\n<p> there </p>"), "Hi\nthere");
    }
}
