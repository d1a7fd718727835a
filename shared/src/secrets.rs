//! Secrets read at start from AWS Secrets Manager, not from the function's environment: the
//! template gives a function only `USERSTATE_SECRETS`, the names of the secrets it may read (its
//! IAM policy allows `secretsmanager:GetSecretValue` on exactly those), so no secret value sits
//! in the function configuration where `lambda:GetFunctionConfiguration` would show it. Each
//! secret's `SecretString` is a JSON object of settings (`{"XENDIT_SECRET_KEY": "…", …}`); its
//! keys are read like environment variables, before the environment. Read once per instance.

use std::collections::BTreeMap;

use crate::config::ConfigError;

/// The environment variable naming the secrets (comma-separated names or ARNs).
pub const SECRETS_VAR: &str = "USERSTATE_SECRETS";

/// Settings read from secrets, by name.
#[derive(Clone, Debug, Default)]
pub struct SecretSettings(BTreeMap<String, String>);

impl SecretSettings {
    /// The value of `name`, if a secret holds it (non-empty).
    pub fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// The setting names held (never their values).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Adds the keys of one secret's JSON object; a key held by an earlier secret is kept.
    fn merge(&mut self, id: &str, secret_string: &str) -> Result<(), ConfigError> {
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(secret_string).map_err(|_| {
                ConfigError(format!("secret {id}: SecretString is not a JSON object"))
            })?;
        for (key, value) in object {
            let serde_json::Value::String(value) = value else {
                return Err(ConfigError(format!(
                    "secret {id}: the value of {key} is not a string"
                )));
            };
            self.0.entry(key).or_insert(value);
        }
        Ok(())
    }
}

/// The secret ids `USERSTATE_SECRETS` names.
pub fn ids_from(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads `ids` from Secrets Manager (one `GetSecretValue` each). A secret that cannot be read is
/// a start failure naming it (never its value).
pub async fn load(
    sdk: &aws_config::SdkConfig,
    ids: &[String],
) -> Result<SecretSettings, ConfigError> {
    let mut settings = SecretSettings::default();
    if ids.is_empty() {
        return Ok(settings);
    }
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    for id in ids {
        let out = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| {
                let e = aws_sdk_secretsmanager::error::DisplayErrorContext(e);
                ConfigError(format!("secret {id} could not be read: {e}"))
            })?;
        let text = out
            .secret_string()
            .ok_or_else(|| ConfigError(format!("secret {id} has no SecretString")))?;
        settings.merge(id, text)?;
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_a_comma_separated_list() {
        assert_eq!(ids_from(Some(" a/dev , b/dev,,")), vec!["a/dev", "b/dev"]);
        assert!(ids_from(None).is_empty());
    }

    #[test]
    fn a_secret_is_a_json_object_of_strings_and_errors_never_show_values() {
        let mut s = SecretSettings::default();
        s.merge("one", r#"{"A": "1", "B": ""}"#).expect("object");
        s.merge("two", r#"{"A": "2", "C": "3"}"#).expect("object");
        assert_eq!(s.get("A").as_deref(), Some("1"), "the first secret wins");
        assert_eq!(s.get("B"), None, "empty is unset");
        assert_eq!(s.get("C").as_deref(), Some("3"));
        let e = s
            .merge("bad", r#"{"K": 12345678}"#)
            .expect_err("not a string");
        assert!(!e.0.contains("12345678"), "{}", e.0);
        let e = s.merge("raw", "hunter2hunter2").expect_err("not JSON");
        assert!(!e.0.contains("hunter2"), "{}", e.0);
    }
}
