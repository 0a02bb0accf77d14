//! The rotation state machine: begin, create, stage, verify, promote, grace,
//! revoke — each step journaled before the next — plus recovery and rollback.
