//! How handlers get the service they need from the application state (`State<Wallets>` via
//! [`axum::extract::FromRef`]).

#[allow(unused_imports)]
use axum::extract::FromRef;

#[allow(unused_imports)]
use crate::app::App;

// --- auth services ---
// --- end auth services ---

// --- money services ---
// --- end money services ---

// --- other services ---
// --- end other services ---
