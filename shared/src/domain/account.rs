//! Account identifiers and the stored user records every route group reads.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, FieldError};

fn invalid(field: &str, msg: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, msg)])
}

/// A username: 3–32 characters of `a-z 0-9 _ . -`, stored lower-case.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Username, ApiError> {
        let s = raw.trim().to_lowercase();
        let ok = (3..=32).contains(&s.len())
            && s.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
            });
        if ok {
            Ok(Username(s))
        } else {
            Err(invalid(
                "username",
                "must be 3-32 characters of a-z, 0-9, _ . -",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address, normalised (trimmed, Unicode NFKC, lower-cased) so uniqueness is
/// case-insensitive and look-alike spellings (composed / decomposed accents, full-width letters)
/// are one address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, ApiError> {
        let nfkc = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc();
        let folded = nfkc.normalize(raw.trim()).to_lowercase();
        let s = nfkc.normalize(folded.trim()).into_owned();
        let valid = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && match s.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && local.len() <= 64
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                        && !domain.contains("..")
                }
                None => false,
            };
        if valid {
            Ok(Email(s))
        } else {
            Err(invalid("email", "must be a valid e-mail address"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An Indonesian mobile number as MSISDN `628…` (10–15 digits). `08…` and `+628…` are normalised.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    /// Errors carry the original messages: `PhoneFormatErr`.
    pub fn parse(raw: &str) -> Result<Phone, ApiError> {
        let s: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        let s = s.strip_prefix('+').unwrap_or(&s).to_owned();
        let s = match s.strip_prefix('0') {
            Some(rest) => format!("62{rest}"),
            None => s,
        };
        let ok = s.starts_with("628")
            && (10..=15).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_digit());
        if ok {
            Ok(Phone(s))
        } else {
            Err(ApiError::bad_request("PhoneFormatErr"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Account state on the `LOGIN` item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Pending,
    Active,
    Deactivated,
}

/// `USER#{u}` / `LOGIN`: credentials and state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginRecord {
    pub pk: String,
    pub sk: String,
    pub username: String,
    /// PHC string (argon2id) or a legacy bcrypt hash.
    pub pwd: String,
    pub disabled: bool,
    pub status: AccountStatus,
    /// Signup mode (`LINK` or `OTP`) while pending.
    #[serde(default)]
    pub mode: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// `USER#{u}` / `INFO`: the profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserInfo {
    pub pk: String,
    pub sk: String,
    pub username: String,
    pub full_name: String,
    pub email: String,
    #[serde(default)]
    pub phone_number: Option<String>,
    /// Stored blob name of the profile image.
    #[serde(default)]
    pub profile_img: Option<String>,
    pub agent: bool,
    pub referral_code: String,
    /// Referral code used at signup (recorded for the referral issue).
    #[serde(default)]
    pub referred_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// GSI1: `EMAIL#{email}` → the user (login by e-mail).
    pub gsi1pk: String,
    pub gsi1sk: String,
}

/// `USER#{u}` / `WALLET`: balance (rupiah) and points; `version` increments on every change.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WalletRecord {
    pub pk: String,
    pub sk: String,
    pub balance: i64,
    pub points: i64,
    pub version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_normalised_to_msisdn() {
        assert_eq!(
            Phone::parse("0812-3456-789").map(|p| p.as_str().to_owned()),
            Ok("628123456789".into())
        );
        assert_eq!(
            Phone::parse("+628123456789").map(|p| p.as_str().to_owned()),
            Ok("628123456789".into())
        );
        assert!(Phone::parse("12345").is_err());
        assert!(
            Phone::parse("6221555123").is_err(),
            "landline is not a mobile number"
        );
    }

    #[test]
    fn emails_are_case_insensitive() {
        assert_eq!(
            Email::parse(" John@Example.COM "),
            Email::parse("john@example.com")
        );
        assert!(Email::parse("no-at-sign").is_err());
        assert!(Email::parse("a@b").is_err());
    }

    #[test]
    fn emails_are_unicode_normalised_before_comparing() {
        let composed = Email::parse("Jos\u{e9}@Caf\u{e9}.example").expect("valid");
        let decomposed = Email::parse("jose\u{301}@CAFE\u{301}.example").expect("valid");
        assert_eq!(composed, decomposed);
        assert_eq!(composed.as_str(), "jos\u{e9}@caf\u{e9}.example");
        // Full-width letters are the ASCII address.
        assert_eq!(
            Email::parse("\u{ff2a}\u{ff4f}\u{ff48}\u{ff4e}@example.com").expect("valid"),
            Email::parse("john@example.com").expect("valid")
        );
    }

    #[test]
    fn usernames_are_restricted() {
        assert!(Username::parse("john_doe").is_ok());
        assert!(Username::parse("jo").is_err());
        assert!(Username::parse("john doe").is_err());
        assert!(Username::parse("jöhn").is_err());
    }
}
