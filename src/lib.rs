//! rekey: zero-downtime rotation of LLM-provider API keys.
//!
//! The three seams to the outside world are [`providers::Provider`],
//! [`stores::SecretStore`] and [`state::StateStore`]; [`clock::Clock`] makes
//! time injectable. Everything else is plain structs and functions.

pub mod admin;
pub mod app;
pub mod audit;
pub mod aws_error;
pub mod backoff;
pub mod clock;
pub mod commands;
pub mod config;
pub mod credential;
pub mod daemon;
#[cfg(feature = "sim")]
pub mod dev;
pub mod events;
pub mod failpoint;
pub mod fleet;
pub mod fsutil;
pub mod hooks;
pub mod inventory;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod notify;
pub mod observer;
pub mod policy;
pub mod providers;
pub mod reload;
pub mod rotation;
pub mod schedule;
pub mod secret;
pub mod service;
pub mod signals;
#[cfg(feature = "sim")]
pub mod sim;
pub mod state;
pub mod status;
pub mod stores;
pub mod text;
