//! deploy/kubernetes-ha/ against the config it ships: three replicas over the
//! DynamoDB state table (no PVC), rolled one at a time, kept two-available by
//! a PodDisruptionBudget and spread over zones and nodes; plus every check
//! the single-replica variant passes (kubernetes.rs): probes on the admin
//! port, hardened pods, the grace period, IRSA.

use std::path::Path;
use std::time::Duration;

use rekey::config::Config;
use rekey::config::load::{SourceFormat, load_str};
use serde_json::Value;

use super::kubernetes::{
    check_grace_period, check_hardened, check_irsa, check_manifests_listed, check_probes,
    manifest_in, mount_path, pod_spec_in,
};
use super::{configmap_toml_in, read, seconds};

const DIR: &str = "deploy/kubernetes-ha";

/// The bounds of `daemon.dynamodb.lease` (i12 common brief).
const LEASE_BOUNDS: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(600));

/// The HA ConfigMap's rekey.toml as a plain document, as written.
fn ha_toml() -> Value {
    config::Config::builder()
        .add_source(config::File::from_str(
            &configmap_toml_in(DIR),
            config::FileFormat::Toml,
        ))
        .build()
        .and_then(|c| c.try_deserialize())
        .unwrap_or_else(|e| panic!("{DIR}/configmap.yaml: rekey.toml is not TOML: {e}"))
}

/// The table of the HA ConfigMap's `state = "dynamodb:TABLE"`.
pub(super) fn ha_state_table() -> String {
    let state = ha_toml()["daemon"]["state"]
        .as_str()
        .expect("daemon.state")
        .to_string();
    state
        .strip_prefix("dynamodb:")
        .unwrap_or_else(|| panic!("{DIR}: state {state:?} is a DynamoDB table"))
        .to_string()
}

/// The HA ConfigMap's rekey.toml through rekey's own loader, as it is: the
/// DynamoDB state, its section and every call timeout fitting in the lease.
fn ha_config() -> Config {
    let toml = configmap_toml_in(DIR);
    load_str(&toml, SourceFormat::Toml, Path::new("/etc/rekey"))
        .unwrap_or_else(|e| panic!("{DIR}: the ConfigMap's rekey.toml is invalid: {e}"))
}

#[test]
fn every_ha_manifest_parses_and_the_kustomization_lists_them_all() {
    check_manifests_listed(DIR);
}

#[test]
fn the_ha_config_names_the_table_of_the_contract() {
    let doc = ha_toml();
    let table = ha_state_table();
    let valid = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    assert!(
        (3..=255).contains(&table.len()) && table.chars().all(valid),
        "table name {table:?}"
    );
    let dynamodb = &doc["daemon"]["dynamodb"];
    let region = check_irsa(DIR, &ha_config());
    assert_eq!(
        dynamodb["region"], region,
        "the table in the pod's AWS_REGION"
    );
    assert!(
        dynamodb.get("endpoint_url").is_none(),
        "endpoint_url is for tests (moto), not production"
    );
    assert_eq!(
        dynamodb["create_table"], false,
        "CloudFormation creates the table; the role has no CreateTable"
    );
    let lease = seconds(dynamodb["lease"].as_str().expect("daemon.dynamodb.lease"));
    assert!(
        (LEASE_BOUNDS.0..=LEASE_BOUNDS.1).contains(&lease),
        "lease {lease:?} within {LEASE_BOUNDS:?}"
    );

    let config = ha_config();
    assert!(!config.policies.is_empty());
    let state = format!("{:?}", config.daemon.state);
    if !state.starts_with("File(") {
        assert!(state.contains(&table), "{state} names {table}");
    }
}

#[test]
fn the_ha_probes_hit_healthz_and_readyz_on_the_port_the_config_listens_on() {
    check_probes(DIR, &ha_config());
}

#[test]
fn the_ha_pods_run_non_root_read_only_without_capabilities() {
    check_hardened(DIR);
}

#[test]
fn the_ha_grace_period_outlasts_the_configured_shutdown_timeout() {
    check_grace_period(DIR, &ha_config());
}

#[test]
fn three_replicas_roll_one_at_a_time_with_no_volume_claim() {
    let deployment = manifest_in(DIR, "deployment.yaml");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 3);
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 1);
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxSurge"], 1);
    for (name, doc) in docs() {
        assert_ne!(doc["kind"], "PersistentVolumeClaim", "{name}: no PVC");
        assert_ne!(doc["kind"], "StatefulSet", "{name}");
    }
    let volumes = pod_spec_in(DIR)["volumes"].clone();
    for volume in volumes.as_array().unwrap() {
        assert!(
            volume.get("persistentVolumeClaim").is_none(),
            "{volume}: the state is in the table, not on a volume"
        );
    }
}

#[test]
fn the_ha_audit_log_is_on_a_writable_emptydir() {
    let audit = ha_config().daemon.audit_log.expect("audit_log");
    let volumes = pod_spec_in(DIR)["volumes"].clone();
    let volume = volumes
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v.get("emptyDir").is_some())
        .cloned()
        .expect("an emptyDir volume");
    let mount = mount_path(DIR, &volume);
    assert!(audit.starts_with(&mount), "{} on {mount}", audit.display());
}

/// Every manifest of the HA kustomization, by file name.
fn docs() -> Vec<(String, Value)> {
    let kustomization = manifest_in(DIR, "kustomization.yaml");
    kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .map(|name| {
            let doc = manifest_in(DIR, &name);
            (name, doc)
        })
        .collect()
}

fn pod_labels() -> Value {
    manifest_in(DIR, "deployment.yaml")["spec"]["template"]["metadata"]["labels"].clone()
}

/// Whether `selector.matchLabels` selects the Deployment's pods.
fn selects_the_pods(selector: &Value) -> bool {
    let labels = pod_labels();
    let wanted = selector["matchLabels"].as_object();
    wanted.is_some_and(|w| !w.is_empty() && w.iter().all(|(k, v)| labels[k] == *v))
}

#[test]
fn a_disruption_budget_keeps_two_of_three_replicas() {
    let pdb = manifest_in(DIR, "pdb.yaml");
    assert_eq!(pdb["kind"], "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 2);
    assert!(pdb["spec"].get("maxUnavailable").is_none());
    assert!(selects_the_pods(&pdb["spec"]["selector"]));
    let replicas = manifest_in(DIR, "deployment.yaml")["spec"]["replicas"]
        .as_u64()
        .unwrap();
    assert!(replicas > 2, "a drain can still evict one pod");
}

#[test]
fn the_replicas_spread_over_zones_and_nodes() {
    let constraints = pod_spec_in(DIR)["topologySpreadConstraints"].clone();
    let constraints = constraints.as_array().expect("topologySpreadConstraints");
    for key in ["topology.kubernetes.io/zone", "kubernetes.io/hostname"] {
        let c = constraints
            .iter()
            .find(|c| c["topologyKey"] == key)
            .unwrap_or_else(|| panic!("a spread over {key}"));
        assert_eq!(c["whenUnsatisfiable"], "ScheduleAnyway", "{key}");
        assert_eq!(c["maxSkew"], 1, "{key}");
        assert!(selects_the_pods(&c["labelSelector"]), "{key}");
    }
}

#[test]
fn the_shared_manifests_are_the_single_variants() {
    for file in ["namespace.yaml", "serviceaccount.yaml", "service.yaml"] {
        assert_eq!(
            read(&format!("{DIR}/{file}")),
            read(&format!("deploy/kubernetes/{file}")),
            "{DIR}/{file} is a copy of deploy/kubernetes/{file}"
        );
    }
}

#[test]
fn the_ha_pods_get_aws_credentials_through_irsa_in_the_stores_region() {
    check_irsa(DIR, &ha_config());
}
