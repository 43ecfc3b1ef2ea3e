//! Options of auth collections, stored in `_collections.options` as PocketBase stores them.

use serde::{Deserialize, Serialize};

use super::ids;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailTemplate {
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthAlert {
    #[serde(default)]
    pub enabled: bool,
    pub email_template: EmailTemplate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MappedFields {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub username: String,
    #[serde(default, rename = "avatarURL")]
    pub avatar_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Options {
    #[serde(default)]
    pub providers: Vec<serde_json::Value>,
    #[serde(default)]
    pub mapped_fields: MappedFields,
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordAuth {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub identity_fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mfa {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub duration: i64,
    #[serde(default)]
    pub rule: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Otp {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub duration: i64,
    #[serde(default)]
    pub length: i64,
    pub email_template: EmailTemplate,
}

/// A token kind's signing secret (never sent to clients) and lifetime in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenConfig {
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub duration: i64,
}

impl TokenConfig {
    fn new(duration: i64) -> Self {
        Self {
            secret: ids::random_alphanumeric(50),
            duration,
        }
    }
}

/// Everything an auth collection adds to a base collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthOptions {
    pub auth_rule: Option<String>,
    pub manage_rule: Option<String>,
    pub auth_alert: AuthAlert,
    #[serde(rename = "oauth2")]
    pub oauth2: OAuth2Options,
    pub password_auth: PasswordAuth,
    pub mfa: Mfa,
    pub otp: Otp,
    pub auth_token: TokenConfig,
    pub password_reset_token: TokenConfig,
    pub email_change_token: TokenConfig,
    pub verification_token: TokenConfig,
    pub file_token: TokenConfig,
    pub verification_template: EmailTemplate,
    pub reset_password_template: EmailTemplate,
    pub confirm_email_change_template: EmailTemplate,
}

const SIGNATURE: &str = "<p>\n  Thanks,<br/>\n  {APP_NAME} team\n</p>";

fn template(subject: &str, body: &str) -> EmailTemplate {
    EmailTemplate {
        subject: subject.into(),
        body: format!("{body}\n{SIGNATURE}"),
    }
}

impl Default for AuthOptions {
    /// PocketBase's defaults for a new auth collection, with fresh secrets.
    fn default() -> Self {
        AuthOptions {
            auth_rule: Some(String::new()),
            manage_rule: None,
            auth_alert: AuthAlert {
                enabled: true,
                email_template: template(
                    "Login from a new location",
                    "<p>Hello,</p>\n<p>We noticed a login to your {APP_NAME} account from a new location:</p>\n<p><em>{ALERT_INFO}</em></p>\n<p><strong>If this wasn't you, you should immediately change your {APP_NAME} account password to revoke access from all other locations.</strong></p>\n<p>If this was you, you may disregard this email.</p>",
                ),
            },
            oauth2: OAuth2Options {
                providers: vec![],
                mapped_fields: MappedFields::default(),
                enabled: false,
            },
            password_auth: PasswordAuth {
                enabled: true,
                identity_fields: vec!["email".into()],
            },
            mfa: Mfa {
                enabled: false,
                duration: 600,
                rule: String::new(),
            },
            otp: Otp {
                enabled: false,
                duration: 180,
                length: 8,
                email_template: template(
                    "OTP for {APP_NAME}",
                    "<p>Hello,</p>\n<p>Your one-time password is: <strong>{OTP}</strong></p>\n<p><i>If you didn't ask for the one-time password, you can ignore this email.</i></p>",
                ),
            },
            auth_token: TokenConfig::new(432_000),
            password_reset_token: TokenConfig::new(1800),
            email_change_token: TokenConfig::new(1800),
            verification_token: TokenConfig::new(86_400),
            file_token: TokenConfig::new(180),
            verification_template: template(
                "Verify your {APP_NAME} email",
                "<p>Hello,</p>\n<p>Thank you for joining us at {APP_NAME}.</p>\n<p>Click on the button below to verify your email address.</p>\n<p>\n  <a class=\"btn\" href=\"{APP_URL}/_/#/auth/confirm-verification/{TOKEN}\" target=\"_blank\" rel=\"noopener\">Verify</a>\n</p>\n<p><i>If you didn't recently register, please ignore this email.</i></p>",
            ),
            reset_password_template: template(
                "Reset your {APP_NAME} password",
                "<p>Hello,</p>\n<p>Click on the button below to reset your password.</p>\n<p>\n  <a class=\"btn\" href=\"{APP_URL}/_/#/auth/confirm-password-reset/{TOKEN}\" target=\"_blank\" rel=\"noopener\">Reset password</a>\n</p>\n<p><i>If you didn't ask to reset your password, please ignore this email.</i></p>",
            ),
            confirm_email_change_template: template(
                "Confirm your {APP_NAME} new email address",
                "<p>Hello,</p>\n<p>Click on the button below to confirm your new email address.</p>\n<p>\n  <a class=\"btn\" href=\"{APP_URL}/_/#/auth/confirm-email-change/{TOKEN}\" target=\"_blank\" rel=\"noopener\">Confirm new email</a>\n</p>\n<p><i>If you didn't ask to change your email address, please ignore this email.</i></p>",
            ),
        }
    }
}

impl AuthOptions {
    /// Gives every token kind a secret if it has none (e.g. after an import without secrets).
    pub fn ensure_secrets(&mut self) {
        for t in [
            &mut self.auth_token,
            &mut self.password_reset_token,
            &mut self.email_change_token,
            &mut self.verification_token,
            &mut self.file_token,
        ] {
            if t.secret.is_empty() {
                t.secret = ids::random_alphanumeric(50);
            }
        }
    }
}
