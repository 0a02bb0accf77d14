//! Append-only JSON-lines audit log at `daemon.audit_log`: one fsync'd line
//! per state change, never any key material. (Stub: being built.)

use std::path::Path;

use crate::events::Event;

pub struct AuditLog {}

impl AuditLog {
    pub fn open(_path: &Path) -> Result<Self, String> {
        Ok(AuditLog {})
    }

    pub fn append(&self, _event: &Event) {}
}
