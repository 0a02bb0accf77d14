//! File operations failing with EIO at every write, fsync, rename, directory
//! fsync (after the rename landed) and remove of a rotation — the file
//! store's and the journal's alike (`REKEY_IO_FAULT=<op>:<n>`).

use super::{Secret, assert_no_panic};
use crate::crash_matrix::Store;
use crate::helpers::TestEnv;

/// Calls of one operation a rotation makes are far fewer than this.
const MAX_CALLS: usize = 40;

async fn every_call_of(op: &str) {
    for n in 1..=MAX_CALLS {
        let env = TestEnv::new().await;
        let secret = Secret::new(env, Store::Files, "").await;
        let when = format!("{op} #{n} fails");
        let config = secret.env.config_path();
        let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];
        let fault = format!("{op}:{n}");
        let mut cmd = secret.env.command(&args, &[("REKEY_IO_FAULT", &fault)]);
        let out = cmd.output().await.expect("rekey ran");
        let run = secret.env.keep(out);
        assert_no_panic(&run, &when);
        secret.assert_safe(&when).await;
        if !run.stderr.contains("io fault:") {
            // Fewer than n such calls: this rotation met no fault.
            run.assert_code(0);
            return;
        }
        secret.rotate_until_ok(&when, 2).await;
    }
    panic!("{op}: more than {MAX_CALLS} calls in one rotation");
}

#[tokio::test]
async fn every_write_of_a_rotation_failing() {
    every_call_of("write").await;
}

#[tokio::test]
async fn every_fsync_of_a_rotation_failing() {
    every_call_of("fsync").await;
}

#[tokio::test]
async fn every_rename_of_a_rotation_failing() {
    every_call_of("rename").await;
}

#[tokio::test]
async fn every_directory_fsync_after_a_landed_rename_failing() {
    every_call_of("dirsync").await;
}

#[tokio::test]
async fn every_remove_of_a_rotation_failing() {
    every_call_of("remove").await;
}
