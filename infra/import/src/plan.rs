//! From source rows to the items to write: validation, normalisation and the bad-row policy
//! (docs/IMPORT.md). Pure: the same source always gives the same items (times come from the
//! source rows, ids are derived), which is what makes re-running the import a no-op.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::source::{
    AddressRow, BalanceRow, InfoRow, LoginRow, PointRow, ReferralRow, Source, ejson_i64, ejson_ms,
    ejson_str, parse_rupiah,
};
use shared::auth::apikey;
use shared::devices;
use shared::domain::{Email, Phone, Username};
use shared::payments::payout::mask;
use shared::payments::voucher;
use shared::store::{Item, StoreError, keys, to_item};

/// Most operations per transaction the importer uses (DynamoDB allows 100).
pub const CHUNK: usize = 90;
/// Description and reference of the opening wallet/points entries.
pub const OPENING_DESCRIPTION: &str = "Opening balance (import)";
pub const OPENING_REFERENCE: &str = "import:opening";
const REFCODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A row not imported as it was, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BadRow {
    pub table: String,
    /// The row's key in the source (`username`, `id`, `holder`, …).
    pub key: String,
    pub reason: String,
    /// `skipped` (the row is not imported), `user skipped` (the whole user is not imported), or
    /// what was done instead (`imported without phone`, `new referral code`, …).
    pub action: String,
}

/// One user's items: history chunks first, the core chunk (LOGIN, INFO, WALLET, guards, opening
/// entries, ADDRMETA and the progress marker) last, so a user is visible only once complete.
#[derive(Clone, Debug)]
pub struct UserPlan {
    pub username: String,
    pub chunks: Vec<Vec<Item>>,
    pub fingerprint: String,
    pub balance: i64,
    pub points: i64,
}

/// Items outside any user's partition.
#[derive(Clone, Debug)]
pub enum Global {
    /// Written if absent; an existing different item is a conflict.
    Item(Item),
    /// A legacy bcrypt API key, stored through `auth::apikey::store_hash`.
    ApiKey {
        holder: String,
        hash: String,
        description: String,
    },
    /// A named id counter that must be at least this value (imported integer ids).
    Counter { name: String, at_least: i64 },
}

/// Everything to write, plus what was read and refused.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub users: Vec<UserPlan>,
    pub globals: Vec<Global>,
    pub rows_read: BTreeMap<String, usize>,
    pub bad_rows: Vec<BadRow>,
    /// Rows imported with a change (normalised, reconciled): reported, not refused.
    pub adjustments: Vec<BadRow>,
    /// Sum of every parseable, non-negative `user_balance.balance` (rupiah).
    pub source_balance_total: i64,
}

fn bad(table: &str, key: impl ToString, reason: impl ToString, action: &str) -> BadRow {
    BadRow {
        table: table.into(),
        key: key.to_string(),
        reason: reason.to_string(),
        action: action.into(),
    }
}

fn item(v: Value) -> Result<Item, StoreError> {
    to_item(&v)
}

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

fn opt_trim(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A referral code derived from the username (deterministic, so a re-run derives the same one).
fn derived_refcode(username: &str, salt: u32) -> String {
    let d = Sha256::digest(format!("refcode:{salt}:{username}").as_bytes());
    d.iter()
        .take(8)
        .map(|b| REFCODE_ALPHABET[*b as usize % REFCODE_ALPHABET.len()] as char)
        .collect()
}

/// A user accepted so far.
struct Candidate {
    username: String,
    login: LoginRow,
    info: InfoRow,
    email: String,
    /// The address's canonical form when it differs and no older imported account shares its
    /// mailbox: the guard that keeps new signups of its aliases out.
    mailbox: Option<String>,
    phone: Option<String>,
    refcode: String,
    balance: i64,
    points: i64,
    balance_ms: i64,
}

/// Builds the plan. Only fails on an internal error (an item that cannot be encoded).
pub fn plan(src: &Source) -> Result<Plan, StoreError> {
    let mut b = Builder::new(src);
    b.logins();
    b.infos();
    b.balances();
    b.group_points();
    b.candidates();
    // --- per-user history, grouped ---
    b.orphan_points();
    b.addresses()?;
    b.devices()?;
    b.transactions()?;
    b.vouchers()?;
    b.deactivations()?;
    // Points ledger and referrals, in the points and referral modules' item shapes.
    b.points_ledger()?;
    b.referrals()?;
    // MongoDB logs (read-only history).
    b.checkout_logs()?;
    b.payout_logs()?;
    // --- core chunk per user ---
    b.core_chunks()?;
    // --- globals ---
    b.offers()?;
    b.api_keys();
    b.banks()?;
    b.payment_types()?;
    Ok(b.p)
}

/// Why a user is skipped: the table to report and the reason.
type Skip = (&'static str, String);

/// The plan being built, and the state that crosses its sections (one method per section, called
/// in [`plan`]'s order, which is the order of `bad_rows`, `adjustments` and items).
struct Builder<'a> {
    src: &'a Source,
    p: Plan,
    /// Every username present in the source (lower-cased), to tell orphans from skipped users.
    known: BTreeSet<String>,
    login_by: BTreeMap<String, &'a LoginRow>,
    info_by: BTreeMap<String, &'a InfoRow>,
    balance_by: BTreeMap<String, &'a BalanceRow>,
    points_by: BTreeMap<String, Vec<&'a PointRow>>,
    /// Claimed by the candidates so far (value: the owner).
    emails: BTreeMap<String, String>,
    mailboxes: BTreeMap<String, String>,
    phones: BTreeMap<String, String>,
    refcodes: BTreeSet<String>,
    /// Users not imported, and why.
    skipped: BTreeMap<String, String>,
    candidates: Vec<Candidate>,
    // Source referral codes, claimed by the oldest account first.
    deferred_refcodes: Vec<usize>,
    imported: BTreeSet<String>,
    refcode_of: HashMap<String, String>,
    history: BTreeMap<String, Vec<Item>>,
    core_extra: BTreeMap<String, Vec<Item>>,
    referred_by: BTreeMap<String, String>,
}

impl<'a> Builder<'a> {
    fn new(src: &'a Source) -> Self {
        Builder {
            src,
            p: Plan {
                rows_read: src
                    .counts()
                    .into_iter()
                    .map(|(t, n)| (t.to_owned(), n))
                    .collect(),
                ..Plan::default()
            },
            known: BTreeSet::new(),
            login_by: BTreeMap::new(),
            info_by: BTreeMap::new(),
            balance_by: BTreeMap::new(),
            points_by: BTreeMap::new(),
            emails: BTreeMap::new(),
            mailboxes: BTreeMap::new(),
            phones: BTreeMap::new(),
            refcodes: BTreeSet::new(),
            skipped: BTreeMap::new(),
            candidates: Vec::new(),
            deferred_refcodes: Vec::new(),
            imported: BTreeSet::new(),
            refcode_of: HashMap::new(),
            history: BTreeMap::new(),
            core_extra: BTreeMap::new(),
            referred_by: BTreeMap::new(),
        }
    }

    /// Logins: valid, unique usernames (first by created_at wins).
    fn logins(&mut self) {
        let src = self.src;
        let mut logins: Vec<_> = src.logins.iter().collect();
        logins.sort_by(|a, b| (a.created_ms, &a.username).cmp(&(b.created_ms, &b.username)));
        for l in logins {
            self.known.insert(l.username.trim().to_lowercase());
            match Username::parse(&l.username) {
                Err(_) => self.p.bad_rows.push(bad(
                    "user_login",
                    &l.username,
                    "invalid username (3-32 of a-z 0-9 _ . -)",
                    "user skipped",
                )),
                Ok(u) if self.login_by.contains_key(u.as_str()) => self.p.bad_rows.push(bad(
                    "user_login",
                    &l.username,
                    format!(
                        "duplicate username (differs only in case from an older account {})",
                        u.as_str()
                    ),
                    "user skipped",
                )),
                Ok(u) => {
                    self.login_by.insert(u.as_str().to_owned(), l);
                }
            }
        }
    }

    /// user_info: one per user.
    fn infos(&mut self) {
        let src = self.src;
        let mut infos: Vec<_> = src.infos.iter().collect();
        infos.sort_by_key(|i| i.id);
        for i in infos {
            let u = i.username.trim().to_lowercase();
            if !self.known.contains(&u) {
                self.p.bad_rows.push(bad(
                    "user_info",
                    i.id,
                    format!("orphaned: user {u} does not exist"),
                    "skipped",
                ));
            } else {
                match self.info_by.entry(u) {
                    std::collections::btree_map::Entry::Occupied(e) => self.p.bad_rows.push(bad(
                        "user_info",
                        i.id,
                        format!("second user_info row for {}", e.key()),
                        "skipped",
                    )),
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(i);
                    }
                }
            }
        }
    }

    /// Balances.
    fn balances(&mut self) {
        let src = self.src;
        for b in &src.balances {
            let u = b.username.trim().to_lowercase();
            if !self.known.contains(&u) {
                self.p.bad_rows.push(bad(
                    "user_balance",
                    &b.username,
                    "orphaned: user does not exist",
                    "skipped",
                ));
            } else if let Ok(v) = parse_rupiah(&b.balance) {
                if v >= 0 {
                    self.p.source_balance_total += v;
                }
                self.balance_by.entry(u).or_insert(b);
            } else {
                self.balance_by.entry(u).or_insert(b);
            }
        }
    }

    /// Point mutations, per user.
    fn group_points(&mut self) {
        let src = self.src;
        for m in &src.points {
            self.points_by
                .entry(m.username.trim().to_lowercase())
                .or_default()
                .push(m);
        }
    }

    /// Candidates (by login created_at: the oldest account keeps a shared e-mail/phone), then the
    /// deferred referral codes.
    fn candidates(&mut self) {
        let mut ordered: Vec<(String, &'a LoginRow)> =
            self.login_by.iter().map(|(u, l)| (u.clone(), *l)).collect();
        ordered.sort_by(|a, b| (a.1.created_ms, &a.0).cmp(&(b.1.created_ms, &b.0)));
        for (u, l) in ordered {
            if let Some(c) = self.candidate(&u, l) {
                self.candidates.push(c);
            }
        }
        self.derive_refcodes();
        self.imported = self.candidates.iter().map(|c| c.username.clone()).collect();
        self.refcode_of = self
            .candidates
            .iter()
            .map(|c| (c.username.clone(), c.refcode.clone()))
            .collect();
    }

    /// The user of one valid login, or None when the whole user is skipped.
    fn candidate(&mut self, u: &str, l: &'a LoginRow) -> Option<Candidate> {
        let (info, email) = match self.identity(u) {
            Ok(v) => v,
            Err(why) => {
                self.skip(u, why);
                return None;
            }
        };
        let (balance, points, balance_ms) = match self.opening(u, l) {
            Ok(v) => v,
            Err(why) => {
                self.skip(u, why);
                return None;
            }
        };
        let phone = self.phone(u, info);
        let address = email.as_str().to_owned();
        self.emails.insert(address.clone(), u.to_owned());
        let mailbox = self.mailbox(u, &email);
        if let Some(ph) = &phone {
            self.phones.insert(ph.clone(), u.to_owned());
        }
        let refcode = self.refcode(u, info);
        Some(Candidate {
            username: u.to_owned(),
            login: l.clone(),
            info: info.clone(),
            email: address,
            mailbox,
            phone,
            refcode,
            balance,
            points,
            balance_ms,
        })
    }

    fn skip(&mut self, u: &str, (table, reason): Skip) {
        self.p.bad_rows.push(bad(table, u, &reason, "user skipped"));
        self.skipped.insert(u.to_owned(), reason);
    }

    /// The user's user_info row and e-mail (valid, not taken by an older account).
    fn identity(&self, u: &str) -> Result<(&'a InfoRow, Email), Skip> {
        let Some(info) = self.info_by.get(u).copied() else {
            return Err(("user_login", "no user_info row (no e-mail)".into()));
        };
        let email = match info.email.as_deref().map(Email::parse) {
            Some(Ok(e)) => e,
            _ => {
                let raw = info.email.as_deref().unwrap_or("");
                return Err(("user_info", format!("invalid e-mail {raw:?}")));
            }
        };
        if let Some(owner) = self.emails.get(email.as_str()) {
            let email = email.as_str();
            return Err((
                "user_info",
                format!(
                    "duplicate e-mail {email} (differs only in case from older account {owner})"
                ),
            ));
        }
        Ok((info, email))
    }

    /// Opening `(balance, points, balance_ms)`; a user_balance row that cannot be imported skips
    /// the user.
    fn opening(&mut self, u: &str, l: &LoginRow) -> Result<(i64, i64, i64), Skip> {
        let Some(b) = self.balance_by.get(u) else {
            let sum = point_sum(self.points_by.get(u).map(Vec::as_slice).unwrap_or(&[]));
            self.p.adjustments.push(bad(
                "user_balance",
                u,
                "no user_balance row",
                "balance 0, points = sum of point_mutation",
            ));
            return Ok((0, sum.max(0), l.created_ms));
        };
        match parse_rupiah(&b.balance) {
            Err(why) => Err((
                "user_balance",
                format!("balance {} {why}", b.balance.trim()),
            )),
            Ok(v) if v < 0 => Err(("user_balance", format!("negative balance {v}"))),
            Ok(_) if b.points < 0 => Err(("user_balance", format!("negative points {}", b.points))),
            Ok(v) => Ok((v, b.points, b.updated_ms.max(b.created_ms))),
        }
    }

    /// The user's phone number; an invalid or taken one is dropped (imported without phone).
    fn phone(&mut self, u: &str, info: &InfoRow) -> Option<String> {
        let raw = opt_trim(&info.phone_number)?;
        let why = match Phone::parse(&raw) {
            Err(_) => format!("invalid phone number {raw:?}"),
            Ok(ph) => match self.phones.get(ph.as_str()) {
                Some(owner) => format!(
                    "phone number {} already belongs to older account {owner}",
                    ph.as_str()
                ),
                None => return Some(ph.as_str().to_owned()),
            },
        };
        self.p
            .bad_rows
            .push(bad("user_info", u, why, "imported without phone"));
        None
    }

    /// Accounts of the original system that share a mailbox (`boss+1@…`, `boss+2@…`) all
    /// stay, each under its exact address; only the oldest also guards the canonical form.
    fn mailbox(&mut self, u: &str, email: &Email) -> Option<String> {
        let canonical = email.canonical();
        match self.mailboxes.get(&canonical) {
            Some(owner) => {
                self.p.adjustments.push(bad(
                    "user_info",
                    u,
                    format!(
                        "e-mail {} shares a mailbox with older account {owner}",
                        email.as_str()
                    ),
                    "imported; login by this exact address only",
                ));
                None
            }
            None => {
                self.mailboxes.insert(canonical.clone(), u.to_owned());
                (canonical != email.as_str()).then_some(canonical)
            }
        }
    }

    /// The source referral code when valid and free; otherwise empty, and derived once every
    /// source code is claimed ([`Self::derive_refcodes`]).
    fn refcode(&mut self, u: &str, info: &InfoRow) -> String {
        let code = opt_trim(&info.referral_code).map(|c| c.to_ascii_uppercase());
        match code {
            Some(c)
                if c.len() <= 32
                    && c.chars().all(|ch| ch.is_ascii_alphanumeric())
                    && !self.refcodes.contains(&c) =>
            {
                self.refcodes.insert(c.clone());
                c
            }
            other => {
                self.p.adjustments.push(bad(
                    "user_info",
                    u,
                    match other {
                        None => "no referral code".to_owned(),
                        Some(c) => format!("referral code {c:?} invalid or already taken"),
                    },
                    "new referral code",
                ));
                self.deferred_refcodes.push(self.candidates.len());
                String::new()
            }
        }
    }

    fn derive_refcodes(&mut self) {
        for &i in &self.deferred_refcodes {
            let c = &mut self.candidates[i];
            let mut salt = 0;
            let mut code = derived_refcode(&c.username, salt);
            while self.refcodes.contains(&code) {
                salt += 1;
                code = derived_refcode(&c.username, salt);
            }
            self.refcodes.insert(code.clone());
            c.refcode = code;
        }
    }

    /// Why a row's owner is not imported (orphan or skipped user); None when it is.
    fn owner_missing(&self, u: &str) -> Option<String> {
        let u = u.trim().to_lowercase();
        if self.imported.contains(&u) {
            None
        } else if let Some(r) = self.skipped.get(&u) {
            Some(format!("user {u} not imported: {r}"))
        } else if self.known.contains(&u) {
            Some(format!("user {u} not imported"))
        } else {
            Some(format!("orphaned: user {u} does not exist"))
        }
    }

    /// Whether the `n`-th row of a MongoDB log collection is imported: it needs an id (its
    /// `id_field`) and an imported owner. The owner's username as stored, or `None` with the bad
    /// row recorded (keyed by the id, or by `#n` when there is none).
    fn log_owner(
        &mut self,
        table: &str,
        id_field: &str,
        n: usize,
        id: &str,
        user: &str,
    ) -> Option<String> {
        if id.is_empty() {
            let reason = format!("no {id_field}");
            self.p
                .bad_rows
                .push(bad(table, format!("#{}", n + 1), reason, "skipped"));
            return None;
        }
        if let Some(why) = self.owner_missing(user) {
            self.p.bad_rows.push(bad(table, id, why, "skipped"));
            return None;
        }
        Some(user.trim().to_lowercase())
    }

    /// Point mutations of users not imported (those of imported users: [`Self::points_ledger`]).
    fn orphan_points(&mut self) {
        for (u, rows) in &self.points_by {
            if let Some(why) = self.owner_missing(u) {
                for m in rows {
                    self.p
                        .bad_rows
                        .push(bad("point_mutation", m.id, &why, "skipped"));
                }
            }
        }
    }

    /// Addresses.
    fn addresses(&mut self) -> Result<(), StoreError> {
        let src = self.src;
        let mut addr_by: BTreeMap<String, Vec<&AddressRow>> = BTreeMap::new();
        for a in &src.addresses {
            match self.owner_missing(&a.username) {
                Some(why) => self
                    .p
                    .bad_rows
                    .push(bad("address_list", a.id, why, "skipped")),
                None => addr_by
                    .entry(a.username.trim().to_lowercase())
                    .or_default()
                    .push(a),
            }
        }
        for (u, mut rows) in addr_by {
            rows.sort_by_key(|a| a.id);
            self.address_book(&u, &rows)?;
        }
        Ok(())
    }

    /// One user's addresses (sorted by id) and their ADDRMETA.
    fn address_book(&mut self, u: &str, rows: &[&AddressRow]) -> Result<(), StoreError> {
        let default_id = self.default_address(u, rows);
        for a in rows {
            let phone = match a.phone_number.as_deref().map(Phone::parse) {
                Some(Ok(ph)) => ph.as_str().to_owned(),
                _ => {
                    let raw = a.phone_number.clone().unwrap_or_default();
                    self.p.adjustments.push(bad(
                        "address_list",
                        a.id,
                        format!("invalid phone number {raw:?}"),
                        "kept as written",
                    ));
                    raw
                }
            };
            let k = keys::address(u, a.id);
            self.history
                .entry(u.to_owned())
                .or_default()
                .push(item(json!({
                    "pk": k.pk, "sk": k.sk, "id": a.id,
                    "label": a.label.clone().unwrap_or_default(),
                    "recipient_name": a.recipient_name.clone().unwrap_or_default(),
                    "phone_number": phone,
                    "address": a.address.clone().unwrap_or_default(),
                    "is_default": a.id == default_id,
                    "created_at": secs(a.created_ms),
                    "updated_at": secs(a.updated_ms),
                }))?);
        }
        let k = keys::address_meta(u);
        let max_id = rows.iter().map(|a| a.id).max().unwrap_or(0);
        self.core_extra
            .entry(u.to_owned())
            .or_default()
            .push(item(json!({
                "pk": k.pk, "sk": k.sk, "count": rows.len() as i64,
                "default_id": default_id, "next_id": max_id, "version": 0,
            }))?);
        Ok(())
    }

    /// The id of the one default address of a user's addresses (sorted by id).
    fn default_address(&mut self, u: &str, rows: &[&AddressRow]) -> i64 {
        let defaults: Vec<_> = rows.iter().filter(|a| a.is_default).collect();
        match defaults.len() {
            0 => {
                self.p.adjustments.push(bad(
                    "address_list",
                    rows[0].id,
                    format!("{u} had no default address"),
                    "made default (oldest)",
                ));
                rows[0].id
            }
            1 => defaults[0].id,
            _ => {
                let keep = defaults
                    .iter()
                    .max_by_key(|a| (a.updated_ms, a.id))
                    .map(|a| a.id)
                    .unwrap_or(rows[0].id);
                self.p.adjustments.push(bad(
                    "address_list",
                    keep,
                    format!("{u} had {} default addresses", defaults.len()),
                    "kept the most recently updated as default",
                ));
                keep
            }
        }
    }

    /// Device tokens: a token belongs to the user who registered it last.
    fn devices(&mut self) -> Result<(), StoreError> {
        let src = self.src;
        let mut fcm: Vec<_> = src.fcm.iter().collect();
        fcm.sort_by_key(|f| std::cmp::Reverse((f.created_ms, f.id)));
        let mut seen_tokens: BTreeSet<String> = BTreeSet::new();
        let mut per_user_devices: BTreeMap<String, usize> = BTreeMap::new();
        for f in fcm {
            if let Some(why) = self.owner_missing(&f.username) {
                self.p.bad_rows.push(bad("fcm", f.id, why, "skipped"));
                continue;
            }
            let u = f.username.trim().to_lowercase();
            let Ok(token) = devices::parse_token(Some(&f.token)) else {
                self.p
                    .bad_rows
                    .push(bad("fcm", f.id, "invalid device token", "skipped"));
                continue;
            };
            let hash = devices::token_hash(&token);
            if !seen_tokens.insert(hash.clone()) {
                self.p.bad_rows.push(bad(
                    "fcm",
                    f.id,
                    "token registered again later (by this or another user)",
                    "skipped",
                ));
                continue;
            }
            let n = per_user_devices.entry(u.clone()).or_default();
            if *n >= devices::MAX_DEVICES {
                self.p.bad_rows.push(bad(
                    "fcm",
                    f.id,
                    format!("more than {} devices", devices::MAX_DEVICES),
                    "skipped (older device)",
                ));
                continue;
            }
            *n += 1;
            let device_type = f
                .device_type
                .as_deref()
                .map(|d| d.trim().to_lowercase())
                .filter(|d| ["android", "ios", "web"].contains(&d.as_str()))
                .unwrap_or_else(|| "android".into());
            for k in [keys::device_owner(&hash), keys::user_device(&u, &hash)] {
                self.history.entry(u.clone()).or_default().push(item(json!({
                    "pk": k.pk, "sk": k.sk, "username": u, "token": token,
                    "device_type": device_type, "updated_at": secs(f.created_ms),
                }))?);
            }
        }
        Ok(())
    }

    /// Transactions (read-only history).
    fn transactions(&mut self) -> Result<(), StoreError> {
        let src = self.src;
        for t in &src.transactions {
            if let Some(why) = self.owner_missing(&t.username) {
                self.p
                    .bad_rows
                    .push(bad("user_transaction", &t.id, why, "skipped"));
                continue;
            }
            let amount = match parse_rupiah(&t.amount) {
                Ok(a) => a,
                Err(why) => {
                    self.p.bad_rows.push(bad(
                        "user_transaction",
                        &t.id,
                        format!("amount {} {why}", t.amount.trim()),
                        "skipped",
                    ));
                    continue;
                }
            };
            let u = t.username.trim().to_lowercase();
            let k = keys::imported_transaction(&u, t.created_ms, &t.id);
            self.history.entry(u.clone()).or_default().push(item(json!({
                "pk": k.pk, "sk": k.sk, "id": t.id, "username": u,
                "type": t.kind, "amount": amount, "status": t.status,
                "payment_method": t.payment_method, "reference_id": t.reference_id,
                "created_at": secs(t.created_ms), "source": "import",
            }))?);
        }
        Ok(())
    }

    /// Voucher redemptions: one counter item per (user, code), as the voucher module keeps them.
    fn vouchers(&mut self) -> Result<(), StoreError> {
        let src = self.src;
        let mut vouchers: BTreeMap<(String, String), (i64, i64, i64)> = BTreeMap::new();
        for v in &src.vouchers {
            if let Some(why) = self.owner_missing(&v.username) {
                self.p
                    .bad_rows
                    .push(bad("voucher_redemption", v.id, why, "skipped"));
                continue;
            }
            let Ok(code) = voucher::VoucherCode::parse(&v.voucher_code).map(String::from) else {
                self.p.bad_rows.push(bad(
                    "voucher_redemption",
                    v.id,
                    "invalid voucher code",
                    "skipped",
                ));
                continue;
            };
            let discount = match parse_rupiah(&v.discount_amount) {
                Ok(d) => d,
                Err(why) => {
                    self.p.bad_rows.push(bad(
                        "voucher_redemption",
                        v.id,
                        format!("discount {why}"),
                        "skipped",
                    ));
                    continue;
                }
            };
            let e = vouchers
                .entry((v.username.trim().to_lowercase(), code))
                .or_insert((0, discount, v.redeemed_ms));
            e.0 += 1;
            if v.redeemed_ms >= e.2 {
                e.1 = discount;
                e.2 = v.redeemed_ms;
            }
        }
        for ((u, code), (count, discount, at_ms)) in vouchers {
            let k = keys::user_voucher(&u, &code);
            let at = chrono::DateTime::from_timestamp_millis(at_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default();
            self.history.entry(u.clone()).or_default().push(item(json!({
                "pk": k.pk, "sk": k.sk, "count": count, "voucher_code": code,
                "discount_amount": discount, "redeemed_at": at,
            }))?);
        }
        Ok(())
    }

    /// Deactivation reasons.
    fn deactivations(&mut self) -> Result<(), StoreError> {
        let src = self.src;
        for d in &src.deactivations {
            if let Some(why) = self.owner_missing(&d.username) {
                self.p
                    .bad_rows
                    .push(bad("deactivate_reason", d.id, why, "skipped"));
                continue;
            }
            let u = d.username.trim().to_lowercase();
            let k = keys::deactivation(&u, d.created_ms);
            self.history.entry(u.clone()).or_default().push(item(json!({
                "pk": k.pk, "sk": k.sk, "username": u,
                "reason": d.reason.clone().unwrap_or_default(), "created_at": secs(d.created_ms),
            }))?);
        }
        Ok(())
    }

    /// Points history, in the points module's item shapes: each imported user's valid point
    /// mutations, and a reconciling opening entry when they do not sum to the opening points.
    fn points_ledger(&mut self) -> Result<(), StoreError> {
        for c in &self.candidates {
            let u = c.username.as_str();
            let rows = self.points_by.get(u).map(Vec::as_slice).unwrap_or(&[]);
            let sum = point_entries(&mut self.p, &mut self.history, u, rows)?;
            let diff = c.points - sum;
            if diff != 0 {
                self.p.adjustments.push(bad(
                    "point_mutation",
                    u,
                    format!(
                        "user_balance.points {} but point_mutation sums to {sum}",
                        c.points
                    ),
                    "reconciling opening entry",
                ));
                let ts = rows
                    .iter()
                    .map(|m| m.created_ms)
                    .min()
                    .unwrap_or(c.balance_ms)
                    - 1;
                self.core_extra
                    .entry(u.to_owned())
                    .or_default()
                    .push(points_entry(
                        u,
                        ts,
                        "import-opening",
                        if diff > 0 { "CREDIT" } else { "DEBIT" },
                        diff.abs(),
                        OPENING_DESCRIPTION,
                        OPENING_REFERENCE,
                    )?);
            }
        }
        Ok(())
    }

    /// Referral relationships, in the referral module's item shapes.
    fn referrals(&mut self) -> Result<(), StoreError> {
        let src = self.src;
        let mut refs: Vec<_> = src.referrals.iter().collect();
        refs.sort_by_key(|r| r.id);
        for r in refs {
            let referred = r.username.trim().to_lowercase();
            let referrer = r.submitted_by.trim().to_lowercase();
            if let Some(why) = self
                .owner_missing(&referred)
                .or_else(|| self.owner_missing(&referrer))
            {
                self.p
                    .bad_rows
                    .push(bad("referral_history", r.id, why, "skipped"));
                continue;
            }
            if referred == referrer
                || self.referred_by.contains_key(&referred)
                || !self.imported.contains(&referrer)
            {
                self.p.bad_rows.push(bad(
                    "referral_history",
                    r.id,
                    "self-referral or second referral of the same user",
                    "skipped",
                ));
                continue;
            }
            let code = self.refcode_of.get(&referrer).cloned().unwrap_or_default();
            self.referred_by.insert(referred.clone(), code.clone());
            let items = referral_items(r, &referred, &referrer, code)?;
            self.history.entry(referred).or_default().extend(items);
        }
        Ok(())
    }

    /// MongoDB checkout logs (read-only history).
    fn checkout_logs(&mut self) -> Result<(), StoreError> {
        let src = self.src;
        for (n, doc) in src.checkout_logs.iter().enumerate() {
            let user = ejson_str(doc, "username").unwrap_or_default();
            let id = ejson_str(doc, "invoice_id")
                .or_else(|| ejson_str(doc, "external_id"))
                .unwrap_or_default();
            let Some(u) = self.log_owner("xendit_checkout_logs", "invoice_id", n, &id, &user)
            else {
                continue;
            };
            let k = keys::imported_log(&u, "CHECKOUT", &id);
            self.history.entry(u.clone()).or_default().push(item(json!({
                "pk": k.pk, "sk": k.sk, "invoice_id": id, "username": u,
                "external_id": ejson_str(doc, "external_id"),
                "amount": doc.get("amount").and_then(ejson_i64),
                "status": ejson_str(doc, "status"),
                "payment_method": ejson_str(doc, "payment_method"),
                "payment_channel": ejson_str(doc, "payment_channel"),
                "description": ejson_str(doc, "description"),
                "created_at": doc.get("created_at").and_then(ejson_ms).map(secs),
                "updated_at": doc.get("updated_at").and_then(ejson_ms).map(secs),
                "source": "import",
            }))?);
        }
        Ok(())
    }

    /// MongoDB payout logs (read-only history).
    fn payout_logs(&mut self) -> Result<(), StoreError> {
        let src = self.src;
        for (n, doc) in src.payout_logs.iter().enumerate() {
            let user = ejson_str(doc, "username").unwrap_or_default();
            let id = ejson_str(doc, "payout_id").unwrap_or_default();
            let Some(u) = self.log_owner("xendit_payout_logs", "payout_id", n, &id, &user) else {
                continue;
            };
            let k = keys::imported_log(&u, "PAYOUT", &id);
            self.history.entry(u.clone()).or_default().push(item(json!({
                "pk": k.pk, "sk": k.sk, "payout_id": id, "username": u,
                "amount": doc.get("amount").and_then(ejson_i64),
                "status": ejson_str(doc, "status"),
                "bank_code": ejson_str(doc, "bank_code"),
                "account_number": ejson_str(doc, "account_number").map(|a| mask(&a)),
                "account_holder_name": ejson_str(doc, "account_holder_name"),
                "description": ejson_str(doc, "description"),
                "reference_id": ejson_str(doc, "reference_id"),
                "created_at": doc.get("created_at").and_then(ejson_ms).map(secs),
                "updated_at": doc.get("updated_at").and_then(ejson_ms).map(secs),
                "source": "import",
            }))?);
        }
        Ok(())
    }

    /// Core chunk per user: history chunks first, then the core chunk ending with the progress
    /// marker, whose fingerprint covers everything before it.
    fn core_chunks(&mut self) -> Result<(), StoreError> {
        for c in &self.candidates {
            let u = c.username.as_str();
            let mut core = core_items(c, self.referred_by.get(u))?;
            core.extend(self.core_extra.remove(u).unwrap_or_default());
            let hist = self.history.remove(u).unwrap_or_default();
            let mut chunks: Vec<Vec<Item>> = hist.chunks(CHUNK).map(<[Item]>::to_vec).collect();
            let fingerprint = fingerprint(chunks.iter().flatten().chain(core.iter()));
            let mk = keys::import_marker(u);
            core.push(item(json!({
                "pk": mk.pk, "sk": mk.sk, "username": u, "fingerprint": fingerprint,
                "balance": c.balance, "points": c.points,
            }))?);
            chunks.push(core);
            self.p.users.push(UserPlan {
                username: u.to_owned(),
                chunks,
                fingerprint,
                balance: c.balance,
                points: c.points,
            });
        }
        Ok(())
    }

    /// Marketing offers, and the OFFER id counter.
    fn offers(&mut self) -> Result<(), StoreError> {
        let src = self.src;
        let mut max_offer = 0;
        for o in &src.offers {
            if let Some(u) = o.username.as_deref().filter(|u| !u.trim().is_empty())
                && let Some(why) = self.owner_missing(u)
            {
                self.p
                    .bad_rows
                    .push(bad("marketing_offer", o.id, why, "skipped"));
                continue;
            }
            max_offer = max_offer.max(o.id);
            let k = keys::offer(&o.id.to_string());
            let valid_until = secs(o.valid_until_ms);
            self.p.globals.push(Global::Item(item(json!({
                "pk": k.pk, "sk": k.sk, "id": o.id,
                "username": o.username.as_deref().map(|u| u.trim().to_lowercase()).filter(|u| !u.is_empty()),
                "title": o.title, "description": o.description.clone().unwrap_or_default(),
                "image_url": o.image_url, "valid_until": valid_until, "is_active": o.is_active,
                "created_at": secs(o.created_ms),
                "gsi1pk": keys::OFFERS_GSI_PK, "gsi1sk": format!("{valid_until:012}#{:010}", o.id),
            }))?));
        }
        if max_offer > 0 {
            self.p.globals.push(Global::Counter {
                name: "OFFER".into(),
                at_least: max_offer,
            });
        }
        Ok(())
    }

    /// Legacy API keys (bcrypt hashes).
    fn api_keys(&mut self) {
        let src = self.src;
        for a in &src.api_keys {
            if !apikey::valid_holder(&a.holder) {
                self.p
                    .bad_rows
                    .push(bad("api_key", &a.holder, "invalid holder name", "skipped"));
            } else if !a.key.starts_with("$2") {
                self.p.bad_rows.push(bad(
                    "api_key",
                    &a.holder,
                    "key is not a bcrypt hash",
                    "skipped",
                ));
            } else {
                self.p.globals.push(Global::ApiKey {
                    holder: a.holder.clone(),
                    hash: a.key.clone(),
                    description: a.description.clone().unwrap_or_default(),
                });
            }
        }
    }

    /// Bank channels.
    fn banks(&mut self) -> Result<(), StoreError> {
        let src = self.src;
        for b in &src.banks {
            let kind = b.kind.trim().to_uppercase();
            let code = b.code.trim().to_uppercase();
            if !["DISBURSEMENT", "VA"].contains(&kind.as_str()) || code.is_empty() {
                self.p.bad_rows.push(bad(
                    "bank_channel",
                    b.id,
                    format!("type {kind:?} is not DISBURSEMENT or VA"),
                    "skipped",
                ));
                continue;
            }
            let k = keys::bank(&format!("{kind}#{code}"));
            self.p.globals.push(Global::Item(item(json!({
                "pk": k.pk, "sk": k.sk, "code": code, "name": b.name, "type": kind,
                "can_disburse": b.can_disburse, "gsi1pk": keys::banks_gsi(&kind), "gsi1sk": code,
            }))?));
        }
        Ok(())
    }

    /// Payment types.
    fn payment_types(&mut self) -> Result<(), StoreError> {
        let src = self.src;
        for t in &src.payment_types {
            let code = t.code.trim().to_uppercase();
            if code.is_empty() {
                self.p
                    .bad_rows
                    .push(bad("payment_type", t.id, "empty code", "skipped"));
                continue;
            }
            let k = keys::payment_type(&code);
            self.p.globals.push(Global::Item(item(json!({
                "pk": k.pk, "sk": k.sk, "code": code, "name": t.name,
                "payment_method": t.payment_method.trim().to_uppercase(), "is_active": t.is_active,
                "gsi1pk": keys::PAYMENT_TYPES_GSI_PK, "gsi1sk": code,
            }))?));
        }
        Ok(())
    }
}

/// A user's core items before the imported extras and the progress marker: LOGIN, INFO, WALLET,
/// the guards and the opening wallet entry.
fn core_items(c: &Candidate, referred_by: Option<&String>) -> Result<Vec<Item>, StoreError> {
    let u = c.username.as_str();
    let mut core = Vec::new();
    let (lk, ik, wk) = (keys::login(u), keys::info(u), keys::wallet(u));
    core.push(item(json!({
        "pk": lk.pk, "sk": lk.sk, "username": u, "pwd": c.login.pwd,
        "disabled": c.login.disabled, "status": "active", "mode": null, "cred_version": 0,
        "created_at": secs(c.login.created_ms), "updated_at": secs(c.login.updated_ms),
    }))?);
    core.push(item(json!({
        "pk": ik.pk, "sk": ik.sk, "username": u,
        "full_name": opt_trim(&c.info.full_name).unwrap_or_else(|| u.to_owned()),
        "email": c.email, "phone_number": c.phone,
        "profile_img": opt_trim(&c.info.profile_img),
        "agent": c.info.agent, "referral_code": c.refcode,
        "referred_by": referred_by,
        "created_at": secs(c.info.created_ms), "updated_at": secs(c.info.updated_ms),
        "gsi1pk": keys::email_gsi(&c.email), "gsi1sk": u,
    }))?);
    let mut wallet = json!({
        "pk": wk.pk, "sk": wk.sk, "balance": c.balance, "points": c.points, "version": 0,
    });
    if c.points > 0 {
        // Wallets holding points are indexed for the points-expiry job (as points::credit_ops).
        wallet["gsi2pk"] = json!(keys::POINTS_HOLDERS_GSI_PK);
        wallet["gsi2sk"] = json!(u);
    }
    core.push(item(wallet)?);
    let guard = |k: shared::store::Key| item(json!({"pk": k.pk, "sk": k.sk, "username": u}));
    core.push(guard(keys::email_guard(&c.email))?);
    if let Some(mailbox) = &c.mailbox {
        core.push(guard(keys::email_guard(mailbox))?);
    }
    core.push(guard(keys::refcode_guard(&c.refcode))?);
    if let Some(ph) = &c.phone {
        core.push(guard(keys::phone_guard(ph))?);
    }
    if c.balance > 0 {
        let k = keys::ledger(u, c.balance_ms, "import-opening");
        core.push(item(json!({
            "pk": k.pk, "sk": k.sk, "entry_id": "import-opening", "type": "CREDIT",
            "amount": c.balance, "balance_after": c.balance,
            "description": OPENING_DESCRIPTION, "reference_id": OPENING_REFERENCE,
            "created_at": secs(c.balance_ms),
        }))?);
    }
    Ok(core)
}

/// Hex SHA-256 of the items' JSON, in order.
fn fingerprint<'i>(items: impl Iterator<Item = &'i Item>) -> String {
    let mut h = Sha256::new();
    for it in items {
        h.update(serde_json::to_vec(it).unwrap_or_default());
    }
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// Credits minus debits of valid mutations.
fn point_sum(rows: &[&PointRow]) -> i64 {
    rows.iter()
        .filter(|m| m.amount > 0)
        .map(|m| match m.kind.trim().to_ascii_uppercase().as_str() {
            "CREDIT" => m.amount,
            "DEBIT" => -m.amount,
            _ => 0,
        })
        .sum()
}

/// `USER#{u}/POINTS#{ts:013}#{id}`: one points ledger entry (the points module's layout).
/// One points-ledger entry in the points module's shape (`keys::points_entry`).
#[allow(clippy::too_many_arguments)]
fn points_entry(
    username: &str,
    ts_ms: i64,
    id: &str,
    kind: &str,
    amount: i64,
    description: &str,
    reference_id: &str,
) -> Result<Item, StoreError> {
    let k = keys::points_entry(username, ts_ms, id);
    to_item(&shared::points::PointsEntry {
        pk: k.pk,
        sk: k.sk,
        entry_id: id.to_owned(),
        kind: if kind == "DEBIT" {
            shared::wallet::EntryType::Debit
        } else {
            shared::wallet::EntryType::Credit
        },
        amount,
        description: description.to_owned(),
        reference_id: reference_id.to_owned(),
        created_ms: ts_ms,
    })
}

/// One imported user's valid point mutations, as points-ledger entries; returns their sum.
fn point_entries(
    p: &mut Plan,
    history: &mut BTreeMap<String, Vec<Item>>,
    u: &str,
    rows: &[&PointRow],
) -> Result<i64, StoreError> {
    let mut sum = 0i64;
    for m in rows {
        let kind = m.kind.trim().to_ascii_uppercase();
        if !["CREDIT", "DEBIT"].contains(&kind.as_str()) || m.amount <= 0 {
            p.bad_rows.push(bad(
                "point_mutation",
                m.id,
                format!("type {kind:?} amount {}", m.amount),
                "skipped (covered by the reconciling entry)",
            ));
            continue;
        }
        sum += if kind == "CREDIT" {
            m.amount
        } else {
            -m.amount
        };
        history.entry(u.to_owned()).or_default().push(points_entry(
            u,
            m.created_ms,
            &format!("pm{}", m.id),
            &kind,
            m.amount,
            &m.description.clone().unwrap_or_default(),
            &m.reference_id.clone().unwrap_or_default(),
        )?);
    }
    Ok(sum)
}

/// One accepted referral's items, for the referred user's partition.
fn referral_items(
    r: &ReferralRow,
    referred: &str,
    referrer: &str,
    code: String,
) -> Result<[Item; 2], StoreError> {
    // The referral module's shapes: the referrer's REFERRAL item and the referred user's
    // REFERRED_BY pointer (one referrer per user).
    let status = match r.status.as_deref().map(|s| s.trim().to_lowercase()) {
        Some(s) if s == "completed" => "completed",
        _ => "pending",
    };
    let k = keys::referral(referrer, r.created_ms, referred);
    let rec = shared::referral::ReferralRecord {
        pk: k.pk,
        sk: k.sk.clone(),
        username: referred.to_owned(),
        submitted_by: referrer.to_owned(),
        referral_code: code.clone(),
        status: status.into(),
        created_ms: r.created_ms,
        completed_ms: (status == "completed").then_some(r.created_ms),
        bonus_points: 0,
        outcome: None,
    };
    let bk = keys::referred_by(referred);
    let by = shared::referral::ReferredBy {
        pk: bk.pk,
        sk: bk.sk,
        referrer: referrer.to_owned(),
        referral_code: code,
        referral_sk: k.sk,
    };
    Ok([to_item(&rec)?, to_item(&by)?])
}
