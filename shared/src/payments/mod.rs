//! Xendit payments: the client, the local simulator, checkout invoices, the callback and the sync.

pub mod callback;
pub mod catalog;
pub mod invoice;
pub mod payout;
pub mod simulator;
pub mod sync;
pub mod voucher;
pub mod xendit;
