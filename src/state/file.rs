//! File state store: one JSON journal per policy, atomic writes, `flock` leases.
