//! The config file as written: serde structs that refuse unknown fields.
//! (Filled in by the config work.)
