//! Providers: the configuration an auth collection holds for each (`oauth2.providers` in the
//! collection JSON, as PocketBase stores it), the presets that fill in what a known provider
//! needs, and how each provider's user answer becomes an [`AuthUser`].

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// One entry of `oauth2.providers` in an auth collection's JSON (PocketBase's
/// `OAuth2ProviderConfig`). The URLs override the preset's, for self-hosted providers
/// (GitLab) and for stand-ins in tests; `extra` holds OpenID Connect settings (`issuer`,
/// `discoveryURL`, `jwksURL`) and extra scopes (`scopes`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProviderConfig {
    pub name: String,
    pub client_id: String,
    pub client_secret: String,
    #[serde(rename = "authURL")]
    pub auth_url: String,
    #[serde(rename = "tokenURL")]
    pub token_url: String,
    #[serde(rename = "userInfoURL")]
    pub user_info_url: String,
    pub display_name: String,
    pub pkce: Option<bool>,
    pub extra: Map<String, Value>,
}

impl ProviderConfig {
    /// The providers of a collection's JSON (entries that do not parse are skipped).
    pub fn all_of(collection: &Value) -> Vec<ProviderConfig> {
        collection
            .pointer("/oauth2/providers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| serde_json::from_value::<ProviderConfig>(p.clone()).ok())
                    .filter(|p| !p.name.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn extra_str(&self, key: &str) -> &str {
        self.extra.get(key).and_then(Value::as_str).unwrap_or("")
    }
}

/// How a provider's user is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// OpenID Connect: the user info endpoint's claims and the verified id token's.
    Oidc,
    Github,
    Gitlab,
    Microsoft,
    Discord,
    /// Sign in with Apple: no user info endpoint; everything is in the id token.
    Apple,
    Facebook,
    Twitch,
    Spotify,
}

/// What is known of a provider before its configuration.
#[derive(Debug, Clone)]
pub struct Preset {
    pub name: &'static str,
    pub display_name: &'static str,
    pub kind: Kind,
    pub auth_url: &'static str,
    pub token_url: &'static str,
    pub user_info_url: &'static str,
    /// OpenID Connect: the issuer of the id tokens and where its keys are.
    pub issuer: &'static str,
    pub jwks_url: &'static str,
    pub scopes: &'static [&'static str],
    pub pkce: bool,
    /// Extra parameters of the authorization URL.
    pub auth_params: &'static [(&'static str, &'static str)],
    /// Whether the client authenticates at the token endpoint with HTTP Basic (else with
    /// `client_id`/`client_secret` in the form).
    pub basic_auth: bool,
}

const fn preset(name: &'static str, display_name: &'static str, kind: Kind) -> Preset {
    Preset {
        name,
        display_name,
        kind,
        auth_url: "",
        token_url: "",
        user_info_url: "",
        issuer: "",
        jwks_url: "",
        scopes: &[],
        pkce: true,
        auth_params: &[],
        basic_auth: false,
    }
}

/// The presets, by name. `oidc`, `oidc2` and `oidc3` are generic OpenID Connect providers
/// (PocketBase's names), configured by their issuer (discovery) or by explicit URLs.
pub fn preset_for(name: &str) -> Option<Preset> {
    let p = match name {
        "oidc" | "oidc2" | "oidc3" => Preset {
            scopes: &["openid", "email", "profile"],
            basic_auth: true,
            ..preset("oidc", "OpenID Connect", Kind::Oidc)
        },
        "google" => Preset {
            auth_url: "https://accounts.google.com/o/oauth2/v2/auth",
            token_url: "https://oauth2.googleapis.com/token",
            user_info_url: "https://openidconnect.googleapis.com/v1/userinfo",
            issuer: "https://accounts.google.com",
            jwks_url: "https://www.googleapis.com/oauth2/v3/certs",
            scopes: &["openid", "email", "profile"],
            ..preset("google", "Google", Kind::Oidc)
        },
        "github" => Preset {
            auth_url: "https://github.com/login/oauth/authorize",
            token_url: "https://github.com/login/oauth/access_token",
            user_info_url: "https://api.github.com/user",
            scopes: &["read:user", "user:email"],
            ..preset("github", "GitHub", Kind::Github)
        },
        "gitlab" => Preset {
            auth_url: "https://gitlab.com/oauth/authorize",
            token_url: "https://gitlab.com/oauth/token",
            user_info_url: "https://gitlab.com/api/v4/user",
            scopes: &["read_user"],
            ..preset("gitlab", "GitLab", Kind::Gitlab)
        },
        "microsoft" => Preset {
            auth_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
            token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
            user_info_url: "https://graph.microsoft.com/v1.0/me",
            scopes: &["User.Read"],
            ..preset("microsoft", "Microsoft", Kind::Microsoft)
        },
        "discord" => Preset {
            auth_url: "https://discord.com/oauth2/authorize",
            token_url: "https://discord.com/api/oauth2/token",
            user_info_url: "https://discord.com/api/users/@me",
            scopes: &["identify", "email"],
            ..preset("discord", "Discord", Kind::Discord)
        },
        "apple" => Preset {
            auth_url: "https://appleid.apple.com/auth/authorize",
            token_url: "https://appleid.apple.com/auth/token",
            issuer: "https://appleid.apple.com",
            jwks_url: "https://appleid.apple.com/auth/keys",
            scopes: &["name", "email"],
            auth_params: &[("response_mode", "form_post")],
            ..preset("apple", "Apple", Kind::Apple)
        },
        "facebook" => Preset {
            auth_url: "https://www.facebook.com/v19.0/dialog/oauth",
            token_url: "https://graph.facebook.com/v19.0/oauth/access_token",
            user_info_url: "https://graph.facebook.com/me?fields=name,email,picture.type(large)",
            scopes: &["email"],
            ..preset("facebook", "Facebook", Kind::Facebook)
        },
        "twitch" => Preset {
            auth_url: "https://id.twitch.tv/oauth2/authorize",
            token_url: "https://id.twitch.tv/oauth2/token",
            user_info_url: "https://api.twitch.tv/helix/users",
            scopes: &["user:read:email"],
            ..preset("twitch", "Twitch", Kind::Twitch)
        },
        "spotify" => Preset {
            auth_url: "https://accounts.spotify.com/authorize",
            token_url: "https://accounts.spotify.com/api/token",
            user_info_url: "https://api.spotify.com/v1/me",
            scopes: &["user-read-private", "user-read-email"],
            ..preset("spotify", "Spotify", Kind::Spotify)
        },
        _ => return None,
    };
    Some(p)
}

/// The names of every preset (for the dashboard and the docs).
pub const PRESET_NAMES: &[&str] = &[
    "oidc",
    "oidc2",
    "oidc3",
    "google",
    "github",
    "gitlab",
    "microsoft",
    "discord",
    "apple",
    "facebook",
    "twitch",
    "spotify",
];

/// The user a provider signed in (PocketBase's `AuthUser`, without the tokens).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthUser {
    pub id: String,
    pub name: String,
    pub username: String,
    pub email: String,
    /// Whether the provider vouches for `email`. An unverified email is never used to find
    /// or to fill an account.
    pub email_verified: bool,
    pub avatar_url: String,
    pub raw: Map<String, Value>,
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// `true`, or the string `"true"` (Apple sends booleans as strings).
fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Reads the user from a provider's answers: `info` is the user info endpoint's JSON (or the
/// id token's claims), `emails` GitHub's `/user/emails` list when it was fetched.
pub fn auth_user(kind: Kind, info: &Value, emails: Option<&Value>) -> AuthUser {
    let raw = info.as_object().cloned().unwrap_or_default();
    let mut u = AuthUser {
        raw,
        ..AuthUser::default()
    };
    match kind {
        Kind::Oidc | Kind::Apple => {
            u.id = text(info, "sub");
            u.name = text(info, "name");
            u.username = text(info, "preferred_username");
            u.email = text(info, "email");
            u.email_verified = truthy(info.get("email_verified"));
            u.avatar_url = text(info, "picture");
        }
        Kind::Github => {
            u.id = text(info, "id");
            u.name = text(info, "name");
            u.username = text(info, "login");
            u.avatar_url = text(info, "avatar_url");
            // the profile's public email is not known to be verified: take the primary
            // verified address of /user/emails
            if let Some(list) = emails.and_then(Value::as_array) {
                let pick = list
                    .iter()
                    .find(|e| truthy(e.get("primary")) && truthy(e.get("verified")));
                if let Some(e) = pick {
                    u.email = text(e, "email");
                    u.email_verified = true;
                }
            }
        }
        Kind::Gitlab => {
            u.id = text(info, "id");
            u.name = text(info, "name");
            u.username = text(info, "username");
            u.email = text(info, "email");
            // GitLab's primary email must be confirmed before it is the account's email;
            // `confirmed_at` says so where the instance exposes it
            u.email_verified = info.get("confirmed_at").is_none_or(|c| !c.is_null());
            u.avatar_url = text(info, "avatar_url");
        }
        Kind::Microsoft => {
            u.id = text(info, "id");
            u.name = text(info, "displayName");
            u.email = text(info, "mail");
            // `mail` is set by a tenant's administrators and is not verified by Microsoft:
            // it may sign up an account but never claims an existing one
            u.email_verified = false;
        }
        Kind::Discord => {
            u.id = text(info, "id");
            u.username = text(info, "username");
            u.name = match text(info, "global_name") {
                n if n.is_empty() => u.username.clone(),
                n => n,
            };
            u.email = text(info, "email");
            u.email_verified = truthy(info.get("verified"));
            let avatar = text(info, "avatar");
            if !avatar.is_empty() {
                u.avatar_url = format!("https://cdn.discordapp.com/avatars/{}/{avatar}.png", u.id);
            }
        }
        Kind::Facebook => {
            u.id = text(info, "id");
            u.name = text(info, "name");
            u.email = text(info, "email");
            // Facebook only returns confirmed emails
            u.email_verified = !u.email.is_empty();
            u.avatar_url = info
                .pointer("/picture/data/url")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
        }
        Kind::Twitch => {
            let d = info.pointer("/data/0").cloned().unwrap_or(json!({}));
            u.id = text(&d, "id");
            u.name = text(&d, "display_name");
            u.username = text(&d, "login");
            u.email = text(&d, "email");
            // the `user:read:email` scope returns verified emails only
            u.email_verified = !u.email.is_empty();
            u.avatar_url = text(&d, "profile_image_url");
        }
        Kind::Spotify => {
            u.id = text(info, "id");
            u.name = text(info, "display_name");
            u.email = text(info, "email");
            // Spotify does not say whether the email was verified
            u.email_verified = false;
            u.avatar_url = info
                .pointer("/images/0/url")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_takes_the_primary_verified_email_only() {
        let info = json!({"id": 42, "login": "octo", "name": "Octo Cat", "email": "public@x.io", "avatar_url": "https://a/x.png"});
        let emails = json!([
            {"email": "old@x.io", "primary": false, "verified": true},
            {"email": "main@x.io", "primary": true, "verified": true}
        ]);
        let u = auth_user(Kind::Github, &info, Some(&emails));
        assert_eq!((u.id.as_str(), u.username.as_str()), ("42", "octo"));
        assert_eq!((u.email.as_str(), u.email_verified), ("main@x.io", true));
        let unverified = json!([{"email": "main@x.io", "primary": true, "verified": false}]);
        let u = auth_user(Kind::Github, &info, Some(&unverified));
        assert_eq!((u.email.as_str(), u.email_verified), ("", false));
    }

    #[test]
    fn oidc_and_apple_read_the_claims() {
        let claims =
            json!({"sub": "abc", "email": "a@x.io", "email_verified": "true", "name": "A"});
        let u = auth_user(Kind::Apple, &claims, None);
        assert_eq!((u.id.as_str(), u.email_verified), ("abc", true));
        let claims = json!({"sub": "abc", "email": "a@x.io", "email_verified": false});
        assert!(!auth_user(Kind::Oidc, &claims, None).email_verified);
        assert!(
            !auth_user(Kind::Oidc, &json!({"sub": "x", "email": "a@x.io"}), None).email_verified
        );
    }

    #[test]
    fn microsoft_mail_never_counts_as_verified() {
        let u = auth_user(
            Kind::Microsoft,
            &json!({"id": "m1", "displayName": "M", "mail": "m@x.io"}),
            None,
        );
        assert_eq!((u.email.as_str(), u.email_verified), ("m@x.io", false));
    }

    #[test]
    fn every_preset_name_resolves() {
        for n in PRESET_NAMES {
            assert!(preset_for(n).is_some(), "{n}");
        }
        assert!(preset_for("nope").is_none());
    }

    #[test]
    fn config_reads_pocketbase_provider_json() {
        let c = json!({"oauth2": {"providers": [
            {"name": "github", "clientId": "id", "clientSecret": "s", "authURL": "", "tokenURL": "http://t", "userInfoURL": "", "displayName": "", "pkce": null, "extra": {}},
            {"bad": true}
        ]}});
        let all = ProviderConfig::all_of(&c);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].token_url, "http://t");
        assert_eq!(all[0].pkce, None);
    }
}
