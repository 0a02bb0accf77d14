//! All integration tests in one binary: the real `rekey` binary and library
//! against the simulator (in-process) and moto (started by ./scripts/test).

mod admin;
mod aws_store;
mod cli;
mod crash_matrix;
mod daemon_proc;
mod faults;
mod helpers;
mod moto;
mod reload;
mod rotation_aws;
mod rotation_file;
mod scheduling;
mod shutdown;
mod sim_openrouter;
