//! Xendit payments: the client, checkout invoices, the callbacks, payouts, vouchers, the catalog
//! and the sync. One service per file; each holds exactly the ports it uses.

pub mod callback;
pub mod catalog;
pub mod invoice;
pub mod payer;
pub mod payout;
pub mod sync;
pub mod voucher;
pub mod xendit;
