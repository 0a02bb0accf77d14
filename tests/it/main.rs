//! All integration tests in one binary: the real `rekey` binary and library
//! against the simulator (in-process) and moto (started by ./scripts/test).
//! They need the simulator, so a build without the `sim` feature has none.
#![cfg(feature = "sim")]

mod admin;
mod aws_store;
mod cli;
mod consumers;
mod crash_matrix;
mod daemon_proc;
mod deploy;
mod due_index;
mod fault_proxy;
mod faults;
mod fleet_reload;
mod ha;
mod helpers;
mod hooks;
mod hostile;
mod journal_corrupt;
mod journal_format;
mod key_audit;
mod leak_check;
mod moto;
mod observability;
mod operator_credentials;
mod operator_log;
mod operator_messages;
mod panic_hook;
mod policy_set;
mod probe_providers;
mod provider_anthropic;
mod provider_arouter;
mod provider_litellm;
mod provider_openai;
mod provider_rate_limit;
mod reload;
mod rotation_aws;
mod rotation_file;
mod scheduling;
mod shutdown;
mod sim_after_effect;
mod sim_openrouter;
mod state_dynamodb;
mod state_migrate;
mod verify_gateway;
