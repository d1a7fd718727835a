//! Banks and payment types, served from the table and seeded by `userstate seed` with the
//! Indonesian banks and e-wallets Xendit supports. Disbursement banks may be refreshed from
//! Xendit's `GET /available_disbursements_banks`.

use serde::{Deserialize, Serialize};

use super::xendit::{Xendit, XenditError};
use crate::store::{
    Query, StoreError, TableRef, from_item, keys, query_all, schema::GSI1, to_item,
};

/// `BANK#{code}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bank {
    pub pk: String,
    pub sk: String,
    pub code: String,
    pub name: String,
    /// `DISBURSEMENT` or `VA`.
    #[serde(rename = "type")]
    pub kind: String,
    pub can_disburse: bool,
    pub gsi1pk: String,
    pub gsi1sk: String,
}

/// `PAYTYPE#{code}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PaymentType {
    pub pk: String,
    pub sk: String,
    pub code: String,
    pub name: String,
    /// `EWALLET`, `VIRTUAL_ACCOUNT`, `QR_CODE`, `RETAIL_OUTLET`.
    pub payment_method: String,
    pub is_active: bool,
    pub gsi1pk: String,
    pub gsi1sk: String,
}

/// What clients see of a bank.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BankView {
    pub code: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub can_disburse: bool,
}

/// What clients see of a payment type.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentTypeView {
    pub code: String,
    pub name: String,
    pub payment_method: String,
}

/// Which banks a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BankKind {
    /// Banks (and e-wallets) payouts go to.
    Disbursement,
    /// Banks offering virtual accounts.
    Va,
}

/// A bank type other than `DISBURSEMENT` or `VA`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown bank type")]
pub struct UnknownBankKind;

impl BankKind {
    /// `DISBURSEMENT` or `VA`, case-insensitive.
    pub fn parse(raw: &str) -> Result<BankKind, UnknownBankKind> {
        match raw.trim().to_uppercase().as_str() {
            "DISBURSEMENT" => Ok(BankKind::Disbursement),
            "VA" => Ok(BankKind::Va),
            _ => Err(UnknownBankKind),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BankKind::Disbursement => "DISBURSEMENT",
            BankKind::Va => "VA",
        }
    }
}

/// Why the banks could not be refreshed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Xendit(#[from] XenditError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn bank(code: &str, name: &str, kind: &str, can_disburse: bool) -> Bank {
    let k = keys::bank(&format!("{kind}#{code}"));
    Bank {
        pk: k.pk,
        sk: k.sk,
        code: code.into(),
        name: name.into(),
        kind: kind.into(),
        can_disburse,
        gsi1pk: keys::banks_gsi(kind),
        gsi1sk: code.into(),
    }
}

fn paytype(code: &str, name: &str, method: &str) -> PaymentType {
    let k = keys::payment_type(code);
    PaymentType {
        pk: k.pk,
        sk: k.sk,
        code: code.into(),
        name: name.into(),
        payment_method: method.into(),
        is_active: true,
        gsi1pk: keys::PAYMENT_TYPES_GSI_PK.into(),
        gsi1sk: code.into(),
    }
}

/// The default banks and payment types: (disbursement banks, virtual-account banks, payment
/// types).
type Defaults = (
    [(&'static str, &'static str); 12],
    [(&'static str, &'static str); 6],
    [(&'static str, &'static str, &'static str); 12],
);

fn defaults() -> Defaults {
    let disb = [
        ("BCA", "Bank Central Asia (BCA)"),
        ("BNI", "Bank Negara Indonesia (BNI)"),
        ("BRI", "Bank Rakyat Indonesia (BRI)"),
        ("MANDIRI", "Bank Mandiri"),
        ("PERMATA", "Bank Permata"),
        ("BSI", "Bank Syariah Indonesia (BSI)"),
        ("CIMB", "CIMB Niaga"),
        ("DANAMON", "Bank Danamon"),
        ("BTN", "Bank Tabungan Negara (BTN)"),
        ("OVO", "OVO"),
        ("DANA", "DANA"),
        ("GOPAY", "GoPay"),
    ];
    let va = [
        ("BCA", "BCA Virtual Account"),
        ("BNI", "BNI Virtual Account"),
        ("BRI", "BRI Virtual Account"),
        ("MANDIRI", "Mandiri Virtual Account"),
        ("PERMATA", "Permata Virtual Account"),
        ("BSI", "BSI Virtual Account"),
    ];
    let types = [
        ("OVO", "OVO", "EWALLET"),
        ("DANA", "DANA", "EWALLET"),
        ("SHOPEEPAY", "ShopeePay", "EWALLET"),
        ("LINKAJA", "LinkAja", "EWALLET"),
        ("BCA", "BCA Virtual Account", "VIRTUAL_ACCOUNT"),
        ("BNI", "BNI Virtual Account", "VIRTUAL_ACCOUNT"),
        ("BRI", "BRI Virtual Account", "VIRTUAL_ACCOUNT"),
        ("MANDIRI", "Mandiri Virtual Account", "VIRTUAL_ACCOUNT"),
        ("PERMATA", "Permata Virtual Account", "VIRTUAL_ACCOUNT"),
        ("QRIS", "QRIS", "QR_CODE"),
        ("ALFAMART", "Alfamart", "RETAIL_OUTLET"),
        ("INDOMARET", "Indomaret", "RETAIL_OUTLET"),
    ];
    (disb, va, types)
}

/// The bank and payment-type catalog. Cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    table: TableRef,
    xendit: Xendit,
}

impl Catalog {
    /// The catalog on the main table, refreshed from `xendit`.
    pub fn new(table: TableRef, xendit: Xendit) -> Catalog {
        Catalog { table, xendit }
    }

    /// Writes the default banks and payment types (idempotent: existing entries are
    /// overwritten).
    pub async fn seed(&self) -> Result<(usize, usize), StoreError> {
        let (disb, va, types) = defaults();
        let mut banks = 0;
        for (code, name) in disb {
            self.table
                .put(to_item(&bank(code, name, "DISBURSEMENT", true))?, None)
                .await?;
            banks += 1;
        }
        for (code, name) in va {
            self.table
                .put(to_item(&bank(code, name, "VA", false))?, None)
                .await?;
            banks += 1;
        }
        for (code, name, method) in types {
            self.table
                .put(to_item(&paytype(code, name, method))?, None)
                .await?;
        }
        Ok((banks, types.len()))
    }

    /// Replaces nothing, adds or updates disbursement banks from Xendit's list.
    pub async fn refresh_from_xendit(&self) -> Result<usize, CatalogError> {
        let banks = self.xendit.available_banks().await?;
        let mut n = 0;
        for b in banks
            .iter()
            .filter(|b| !b.code.is_empty() && b.code.len() <= 32)
        {
            self.table
                .put(
                    to_item(&bank(&b.code, &b.name, "DISBURSEMENT", b.can_disburse))?,
                    None,
                )
                .await?;
            n += 1;
        }
        Ok(n)
    }

    /// Banks of a type, ordered by code.
    pub async fn banks(&self, kind: BankKind) -> Result<Vec<BankView>, StoreError> {
        let items = query_all(
            self.table.as_ref(),
            Query::index(GSI1, keys::banks_gsi(kind.as_str())),
        )
        .await?;
        items
            .iter()
            .map(|i| {
                from_item::<Bank>(i).map(|b| BankView {
                    code: b.code,
                    name: b.name,
                    kind: b.kind,
                    can_disburse: b.can_disburse,
                })
            })
            .collect()
    }

    /// Active payment types, ordered by code.
    pub async fn payment_types(&self) -> Result<Vec<PaymentTypeView>, StoreError> {
        let items = query_all(
            self.table.as_ref(),
            Query::index(GSI1, keys::PAYMENT_TYPES_GSI_PK),
        )
        .await?;
        let mut out = Vec::new();
        for i in &items {
            let t: PaymentType = from_item(i)?;
            if t.is_active {
                out.push(PaymentTypeView {
                    code: t.code,
                    name: t.name,
                    payment_method: t.payment_method,
                });
            }
        }
        Ok(out)
    }
}
