//! Append-only JSON-lines audit log at `daemon.audit_log`: one fsync'd line
//! per state change (and per refused config reload), never any key material
//! — only key ids and redacted labels. Every record has the same fields
//! (null when they do not apply), so a SIEM can parse them with one schema.
//!
//! The file is opened for each record (`O_APPEND`, mode 0600 when created):
//! a log rotated by renaming (logrotate's default) is simply re-created, and
//! a daemon and a `rekey rotate` writing at once never interleave a line.
//!
//! The line is written before [`AuditLog::append`] returns (so it survives
//! the process crashing right after), and its fsync — the call that waits
//! for the disk — runs on Tokio's blocking pool, never on an async worker.
//! Appends come from `Observer::emit`, which rotations call synchronously,
//! so only the fsync can leave the caller. A failed fsync is logged and
//! handed to the `on_sync_failure` hook (counted like a failed write).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::events::{Event, KeyRef};
use crate::fsutil;

pub struct AuditLog {
    path: PathBuf,
    /// Called when an fsync done in the background fails.
    sync_failed: Option<SyncFailed>,
}

type SyncFailed = Arc<dyn Fn() + Send + Sync>;

/// One line of the audit log.
#[derive(Debug, Serialize)]
struct Record<'a> {
    time: String,
    /// The writing process: a crash and its resume show up as two pids.
    pid: u32,
    policy: Option<&'a str>,
    /// The `[[policy_set]]` (its name as written) the policy is a member of.
    policy_set: Option<&'a str>,
    provider: Option<&'a str>,
    rotation_id: Option<&'a str>,
    step: &'a str,
    outcome: &'a str,
    trigger: Option<&'a str>,
    new_key: Option<&'a KeyRef>,
    old_key: Option<&'a KeyRef>,
    error_kind: Option<&'a str>,
    error: Option<&'a str>,
    /// Consecutive failures of the policy so far.
    failures: u32,
    duration_ms: Option<u64>,
}

impl AuditLog {
    /// Creates the parent directory (0700) where missing and checks that the
    /// log can be opened for appending, so a bad path stops the start-up.
    pub fn open(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fsutil::create_private_dir(dir)
                .map_err(|e| format!("daemon.audit_log: cannot create {}: {e}", dir.display()))?;
        }
        let log = AuditLog {
            path: path.to_path_buf(),
            sync_failed: None,
        };
        log.open_append()
            .map_err(|e| format!("daemon.audit_log: cannot open {shown} for appending: {e}"))?;
        Ok(log)
    }

    /// `failed` runs (on a blocking thread) for each fsync that fails after
    /// `append` has returned.
    pub fn on_sync_failure(mut self, failed: impl Fn() + Send + Sync + 'static) -> Self {
        self.sync_failed = Some(Arc::new(failed));
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One state change of a rotation.
    pub fn append(&self, event: &Event) -> io::Result<()> {
        let duration_ms = event.duration.map(|d| d.as_millis() as u64);
        self.write(&Record {
            time: timestamp(event.time),
            pid: std::process::id(),
            policy: Some(&event.policy),
            policy_set: event.policy_set.as_deref(),
            provider: Some(&event.provider),
            rotation_id: event.rotation_id.as_deref(),
            step: event.step.as_str(),
            outcome: event.outcome.as_str(),
            trigger: event.trigger,
            new_key: event.new_key.as_ref(),
            old_key: event.old_key.as_ref(),
            error_kind: event.error_kind,
            error: event.error.as_deref(),
            failures: event.failures,
            duration_ms,
        })
    }

    /// A config reload that was refused: the running config stays.
    pub fn config_refused(&self, reason: &str, time: DateTime<Utc>) -> io::Result<()> {
        self.write(&Record {
            time: timestamp(time),
            pid: std::process::id(),
            policy: None,
            policy_set: None,
            provider: None,
            rotation_id: None,
            step: "config_reload",
            outcome: "refused",
            trigger: None,
            new_key: None,
            old_key: None,
            error_kind: Some("config"),
            error: Some(reason),
            failures: 0,
            duration_ms: None,
        })
    }

    fn write(&self, record: &Record<'_>) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = self.open_append()?;
        // One write call per line: with O_APPEND, concurrent writers never interleave it.
        file.write_all(&line)?;
        self.sync(file)
    }

    /// On a Tokio runtime, fsyncs `file` on the blocking pool and returns at
    /// once; without one (plain threads, unit tests) fsyncs it here.
    fn sync(&self, file: File) -> io::Result<()> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return file.sync_data();
        };
        let (path, failed) = (self.path.clone(), self.sync_failed.clone());
        runtime.spawn_blocking(move || {
            if let Err(e) = file.sync_data() {
                tracing::error!(path = %path.display(), error = %e, "cannot fsync the audit log");
                if let Some(failed) = failed {
                    failed();
                }
            }
        });
        Ok(())
    }

    fn open_append(&self) -> io::Result<std::fs::File> {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::events::{EventOutcome, EventStep};

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn records_are_appended_one_json_line_each_with_the_same_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/audit/rekey.jsonl");
        let log = AuditLog::open(&path).unwrap();
        let mut event = Event::new(
            &"p".parse().unwrap(),
            &"or".into(),
            EventStep::Create,
            EventOutcome::Ok,
        );
        event.rotation_id = Some("r1".parse().unwrap());
        event.new_key = Some(KeyRef {
            id: Some("h1".into()),
            label: "sk-or-v1-abc...def".into(),
        });
        log.append(&event).unwrap();
        log.config_refused("policy[0].schedule: bad cron", Utc::now())
            .unwrap();

        let records = lines(&path);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["step"], "create");
        assert_eq!(records[0]["new_key"]["id"], "h1");
        assert_eq!(records[1]["step"], "config_reload");
        assert_eq!(records[1]["outcome"], "refused");
        assert!(records[1]["policy"].is_null());
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(keys(&records[0]), keys(&records[1]), "one schema");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    }

    #[test]
    fn a_log_renamed_away_is_recreated_by_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        let event = Event::new(
            &"p".parse().unwrap(),
            &"or".into(),
            EventStep::Begin,
            EventOutcome::Ok,
        );
        log.append(&event).unwrap();
        std::fs::rename(&path, dir.path().join("audit.jsonl.1")).unwrap();
        log.append(&event).unwrap();
        assert_eq!(lines(&path).len(), 1);
    }

    #[tokio::test]
    async fn on_a_runtime_the_line_is_written_at_once_and_a_failed_fsync_is_reported_later() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        // Appending to /dev/null succeeds and its fsync fails (EINVAL).
        let failures = Arc::new(AtomicUsize::new(0));
        let counted = failures.clone();
        let log = AuditLog::open(Path::new("/dev/null"))
            .unwrap()
            .on_sync_failure(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            });
        let event = Event::new(
            &"p".parse().unwrap(),
            &"or".into(),
            EventStep::Begin,
            EventOutcome::Ok,
        );
        log.append(&event).expect("the write itself succeeds");
        log.append(&event).expect("the write itself succeeds");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while failures.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            failures.load(Ordering::SeqCst),
            2,
            "each failed fsync reported"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        log.append(&event).unwrap();
        assert_eq!(lines(&path).len(), 1, "in the file when append returns");
    }

    #[test]
    fn without_a_runtime_a_failed_fsync_is_the_appends_error() {
        let log = AuditLog::open(Path::new("/dev/null")).unwrap();
        let event = Event::new(
            &"p".parse().unwrap(),
            &"or".into(),
            EventStep::Begin,
            EventOutcome::Ok,
        );
        assert!(log.append(&event).is_err());
    }

    #[test]
    fn an_unwritable_path_is_refused_at_open_naming_the_field() {
        let err = match AuditLog::open(Path::new("/proc/rekey-audit/x.jsonl")) {
            Err(e) => e,
            Ok(_) => panic!("opened an impossible path"),
        };
        assert!(err.starts_with("daemon.audit_log: "), "{err}");
    }
}
