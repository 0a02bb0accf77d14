//! All integration tests in one binary: the real `rekey` binary and library
//! against the simulator (in-process) and moto (started by ./scripts/test).

mod aws_store;
mod cli;
mod crash_matrix;
mod faults;
mod helpers;
mod moto;
mod provider_openai;
mod rotation_aws;
mod rotation_file;
mod scheduling;
mod sim_openrouter;
