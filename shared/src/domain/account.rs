//! Account identifiers and the stored user records every route group reads.

use serde::{Deserialize, Serialize};

use super::{FieldError, InvalidInput};

fn invalid(field: &str, msg: &str) -> InvalidInput {
    InvalidInput::Fields(vec![FieldError::new(field, msg)])
}

/// A username: 3–32 characters of `a-z 0-9 _ . -`, stored lower-case.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Username, InvalidInput> {
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
    /// A username read back from our own records or a token we signed (imported accounts may
    /// predate today's format, so it is not re-checked).
    pub fn from_stored(name: impl Into<String>) -> Username {
        Username(name.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A username reads as the string it is (store keys, log fields).
impl std::ops::Deref for Username {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address, normalised (trimmed, Unicode NFKC, lower-cased) so uniqueness is
/// case-insensitive and look-alike spellings (composed / decomposed accents, full-width letters)
/// are one address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, InvalidInput> {
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

    /// The mailbox this address delivers to, for uniqueness: the `+tag` is dropped (providers
    /// deliver `boss+1@…` to `boss@…`), and for Gmail, which ignores dots in the local part, the
    /// dots go too (`googlemail.com` is `gmail.com`). Aliases of one mailbox share one canonical
    /// form, so they cannot hold two accounts. The address itself is kept for sending.
    pub fn canonical(&self) -> String {
        let Some((local, domain)) = self.0.rsplit_once('@') else {
            return self.0.clone();
        };
        let base = match local.split_once('+') {
            Some((base, _)) if !base.is_empty() => base,
            _ => local,
        };
        if GMAIL_DOMAINS.contains(&domain) {
            let undotted: String = base.chars().filter(|c| *c != '.').collect();
            if !undotted.is_empty() {
                return format!("{undotted}@gmail.com");
            }
        }
        format!("{base}@{domain}")
    }
}

/// Domains of Gmail, whose mailboxes ignore dots in the local part.
const GMAIL_DOMAINS: [&str; 2] = ["gmail.com", "googlemail.com"];

/// An Indonesian mobile number as MSISDN `628…` (10–15 digits). `08…` and `+628…` are normalised.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    /// Errors carry the original messages: `PhoneFormatErr`.
    pub fn parse(raw: &str) -> Result<Phone, InvalidInput> {
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
            Err(InvalidInput::Message("PhoneFormatErr"))
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
    /// Credential version: bumped by every password change or reset and by deactivation, in
    /// the same write. Sessions remember the version they were opened for and die with it
    /// (`auth::session`). Missing on items written before it existed: 0.
    #[serde(default)]
    pub cred_version: i64,
}

/// `USER#{u}` / `INFO`: the profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserInfo {
    pub pk: String,
    pub sk: String,
    pub username: String,
    pub full_name: String,
    pub email: String,
    /// A verified number (OTP signup or a verified phone change), reserved by a `PHONE#` guard.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// A number given at a LINK-mode signup and never proven: reserves nothing, is not shown, and
    /// becomes `phone_number` only through the verified phone change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unverified_phone: Option<String>,
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
/// `bonus` is the part of `balance` that came from points or vouchers: it can be spent, never
/// paid out (`0 <= bonus <= balance`; see `docs/points.md`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WalletRecord {
    pub pk: String,
    pub sk: String,
    pub balance: i64,
    pub points: i64,
    pub version: i64,
    #[serde(default)]
    pub bonus: i64,
}

impl WalletRecord {
    /// What can be paid out: the balance minus the bonus part.
    pub fn withdrawable(&self) -> i64 {
        (self.balance - self.bonus.clamp(0, self.balance.max(0))).max(0)
    }
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
    fn aliases_of_one_mailbox_share_a_canonical_form() {
        let c = |s: &str| Email::parse(s).expect("valid").canonical();
        assert_eq!(c("Boss+1@Gmail.com"), "boss@gmail.com");
        assert_eq!(c("b.o.s.s+shop@googlemail.com"), "boss@gmail.com");
        assert_eq!(c("boss@gmail.com"), "boss@gmail.com");
        assert_eq!(
            c("first.last+news@example.co.id"),
            "first.last@example.co.id"
        );
        assert_ne!(c("first.last@example.co.id"), c("firstlast@example.co.id"));
        // A leading `+` is part of the name, not a tag.
        assert_eq!(c("+x@example.com"), "+x@example.com");
        // The address itself is kept as given (for sending).
        assert_eq!(
            Email::parse("Boss+1@Gmail.com").expect("valid").as_str(),
            "boss+1@gmail.com"
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
