//! `daemon.state` and `[daemon.dynamodb]`: where the journals and leases
//! live (`file:DIR`, or `dynamodb:TABLE` with the table's region and lease).

use std::path::Path;
use std::time::Duration;

use super::problems::Problems;
use super::refs::resolve;
use crate::config::bounds::{MAX_DYNAMO_LEASE, MIN_DYNAMO_LEASE, human};
use crate::config::raw::RawDynamo;
use crate::config::{DynamoTable, StateLocation};

const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// DynamoDB's own rule for table names.
const TABLE_LEN: std::ops::RangeInclusive<usize> = 3..=255;
const SECTION: &str = "daemon.dynamodb";

/// The state location and the `[daemon.dynamodb]` settings (`Some(None)`:
/// no such section). `None` in either: a problem was recorded.
pub(super) fn state(
    p: &mut Problems,
    raw_state: Option<&str>,
    raw_dynamo: Option<RawDynamo>,
    base_dir: &Path,
) -> (Option<StateLocation>, Option<Option<DynamoTable>>) {
    let section_given = raw_dynamo.is_some();
    let dynamo = match raw_dynamo {
        Some(raw) => dynamo_table(p, raw).map(Some),
        None => Some(None),
    };
    let Some(value) = p.required("daemon.state", raw_state) else {
        return (None, dynamo);
    };
    let location = if let Some(dir) = value.strip_prefix("file:") {
        match dir.trim() {
            "" => unsupported(p),
            dir => Some(StateLocation::File(resolve(base_dir, dir))),
        }
    } else if let Some(table) = value.strip_prefix("dynamodb:") {
        let table = table_name(p, table);
        if !section_given {
            p.push(
                format!("{SECTION}.region"),
                "required when daemon.state is \"dynamodb:<table>\" (add a [daemon.dynamodb] section)",
            );
        }
        match (table, &dynamo) {
            (Some(table), Some(Some(settings))) => {
                Some(StateLocation::DynamoDb(settings.for_table(table)))
            }
            _ => None,
        }
    } else {
        unsupported(p)
    };
    (location, dynamo)
}

fn unsupported(p: &mut Problems) -> Option<StateLocation> {
    p.push(
        "daemon.state",
        "is not supported (value not shown); write \"file:<dir>\" or \"dynamodb:<table>\"",
    );
    None
}

/// A DynamoDB table name: 3-255 characters of `A-Z a-z 0-9 _ . -`.
fn table_name<'a>(p: &mut Problems, name: &'a str) -> Option<&'a str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if TABLE_LEN.contains(&name.len()) && name.chars().all(allowed) {
        return Some(name);
    }
    p.push(
        "daemon.state",
        "the DynamoDB table name must be 3 to 255 characters of A-Z, a-z, 0-9, '_', '.' and '-' (value not shown)",
    );
    None
}

fn dynamo_table(p: &mut Problems, raw: RawDynamo) -> Option<DynamoTable> {
    let at = |field: &str| format!("{SECTION}.{field}");
    let region = p
        .required(&at("region"), raw.region.as_deref())
        .and_then(|r| region(p, &at("region"), r));
    let endpoint_url = match raw.endpoint_url.as_deref() {
        Some(url) => Some(p.http_url(&at("endpoint_url"), url)),
        None => Some(None),
    };
    let lease = match raw.lease.as_deref() {
        None => Some(DEFAULT_LEASE),
        raw => p
            .duration(&at("lease"), raw, MAX_DYNAMO_LEASE)
            .and_then(|d| at_least(p, &at("lease"), d)),
    };
    Some(DynamoTable {
        region: region?,
        endpoint_url: endpoint_url?,
        create_table: raw.create_table.unwrap_or(false),
        lease: lease?,
    })
}

/// An AWS region name such as `eu-central-1`.
fn region(p: &mut Problems, path: &str, region: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if region.len() <= 32 && region.chars().all(allowed) {
        return Some(region.to_string());
    }
    p.push(
        path,
        "is not an AWS region like \"eu-central-1\" (value not shown)",
    );
    None
}

fn at_least(p: &mut Problems, path: &str, lease: Duration) -> Option<Duration> {
    if lease < MIN_DYNAMO_LEASE {
        p.push(
            path,
            format!(
                "must be at least {} (it is renewed every third of it)",
                human(MIN_DYNAMO_LEASE)
            ),
        );
        return None;
    }
    Some(lease)
}
