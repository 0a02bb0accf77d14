//! deploy/kubernetes/ against the config it ships: probes on the port the
//! ConfigMap listens on, state and audit log on the persistent volume, one
//! replica, a grace period above the shutdown timeout, IRSA, non-root. The
//! checks both variants share take the kustomization's directory; the HA
//! variant (deploy/kubernetes-ha/) runs them in kubernetes_ha.rs.

use std::path::Path;

use rekey::config::{Config, StoreKind};
use serde_json::Value;

use super::{configmap_config, repo, yaml};

const DIR: &str = "deploy/kubernetes";

/// Manifest `name` of the kustomization in `dir`.
pub(super) fn manifest_in(dir: &str, name: &str) -> Value {
    yaml(&format!("{dir}/{name}"))
}

fn manifest(name: &str) -> Value {
    manifest_in(DIR, name)
}

pub(super) fn pod_spec_in(dir: &str) -> Value {
    let deployment = manifest_in(dir, "deployment.yaml");
    assert_eq!(deployment["kind"], "Deployment");
    deployment["spec"]["template"]["spec"].clone()
}

fn pod_spec() -> Value {
    pod_spec_in(DIR)
}

fn container() -> Value {
    container_in(DIR)
}

pub(super) fn container_in(dir: &str) -> Value {
    let containers = pod_spec_in(dir)["containers"].clone();
    let containers = containers.as_array().expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    containers[0].clone()
}

/// A probe's port, resolving a named port through the container's ports.
fn probe_port(container: &Value, probe: &str) -> u64 {
    let port = &container[probe]["httpGet"]["port"];
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = port.as_str().expect("a port number or name");
    container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {name}"))
}

/// Every manifest in `dir` parses and its kustomization lists exactly them.
pub(super) fn check_manifests_listed(dir: &str) {
    let kustomization = manifest_in(dir, "kustomization.yaml");
    let listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(repo(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml")
        .collect();
    files.sort();
    for file in &files {
        let doc = manifest_in(dir, file);
        assert!(
            doc["apiVersion"].is_string() && doc["kind"].is_string(),
            "{dir}/{file}"
        );
        assert!(
            listed.contains(&file.as_str()),
            "{dir}: kustomization lists {file}"
        );
    }
    assert_eq!(listed.len(), files.len(), "{listed:?} vs {files:?}");
}

/// Liveness on /healthz, readiness on /readyz, both on the admin port of
/// `config`, which the Service's scrape annotations name too.
pub(super) fn check_probes(dir: &str, config: &Config) {
    let listen = config.daemon.admin_listen;
    assert!(
        listen.ip().is_unspecified(),
        "admin_listen {listen}: the kubelet probes from outside the pod"
    );
    let container = container_in(dir);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            probe_port(&container, probe),
            u64::from(listen.port()),
            "{dir}: {probe}"
        );
    }
    let service = manifest_in(dir, "service.yaml");
    let annotations = &service["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], listen.port().to_string());
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
}

pub(super) fn check_hardened(dir: &str) {
    let pod = pod_spec_in(dir)["securityContext"].clone();
    assert_eq!(pod["runAsNonRoot"], true);
    assert!(pod["runAsUser"].as_u64().is_some_and(|u| u != 0));
    assert_eq!(pod["seccompProfile"]["type"], "RuntimeDefault");
    let c = container_in(dir)["securityContext"].clone();
    assert_eq!(c["runAsNonRoot"], true);
    assert_eq!(c["readOnlyRootFilesystem"], true);
    assert_eq!(c["allowPrivilegeEscalation"], false);
    assert_eq!(c["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(c["capabilities"].get("add").is_none());
    let namespace = manifest_in(dir, "namespace.yaml");
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
}

pub(super) fn check_grace_period(dir: &str, config: &Config) {
    let grace = pod_spec_in(dir)["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    let shutdown = config.daemon.shutdown_timeout;
    assert!(
        grace > shutdown.as_secs(),
        "{dir}: terminationGracePeriodSeconds {grace} vs shutdown_timeout {shutdown:?}"
    );
}

/// The pod's IRSA role and the `AWS_REGION` it runs with; every Secrets
/// Manager store of `config` is in that region.
pub(super) fn check_irsa(dir: &str, config: &Config) -> String {
    let account = manifest_in(dir, "serviceaccount.yaml");
    let role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        .as_str()
        .expect("the IRSA annotation");
    assert!(
        role.starts_with("arn:aws:iam::") && role.contains(":role/"),
        "{role}"
    );
    assert_eq!(
        pod_spec_in(dir)["serviceAccountName"],
        account["metadata"]["name"]
    );
    // aws-sm: credential references use the SDK's region from the environment.
    let env = container_in(dir)["env"].clone();
    let region = env
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "AWS_REGION")
        .and_then(|e| e["value"].as_str().map(str::to_string))
        .expect("AWS_REGION");
    for store in config.stores.values() {
        if let StoreKind::AwsSecretsManager { region: r, .. } = &store.kind {
            assert_eq!(r, &region, "{dir}: store {} region", store.name);
        }
    }
    region
}

/// The path a volume of `dir`'s pod is mounted at, by the volume's name.
pub(super) fn mount_path(dir: &str, volume: &Value) -> String {
    container_in(dir)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .and_then(|m| m["mountPath"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("{dir}: volume {} is mounted", volume["name"]))
}

#[test]
fn every_manifest_parses_and_the_kustomization_lists_them_all() {
    check_manifests_listed(DIR);
}

#[test]
fn the_probes_hit_healthz_and_readyz_on_the_port_the_config_listens_on() {
    check_probes(DIR, &configmap_config());
}

#[test]
fn the_pod_runs_non_root_read_only_without_capabilities() {
    check_hardened(DIR);
}

#[test]
fn one_replica_is_recreated_with_state_and_audit_log_on_the_claim() {
    let deployment = manifest("deployment.yaml");
    assert_eq!(
        deployment["spec"]["replicas"], 1,
        "the lease is a file lock"
    );
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");

    let claim = manifest("pvc.yaml");
    assert_eq!(claim["kind"], "PersistentVolumeClaim");
    let volume = pod_spec()["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"])
        .cloned()
        .expect("a volume from the PVC");
    let mount = container()["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .and_then(|m| m["mountPath"].as_str().map(str::to_string))
        .expect("the PVC is mounted");

    let config = configmap_config();
    let rekey::config::StateLocation::File(state) = &config.daemon.state else {
        panic!("the single-replica configmap keeps its state in files");
    };
    assert!(state.starts_with(&mount), "{} on the PVC", state.display());
    let audit = config
        .daemon
        .audit_log
        .expect("the ConfigMap sets audit_log");
    assert!(audit.starts_with(&mount), "{} on the PVC", audit.display());
    assert!(Path::new(&mount).is_absolute());
}

#[test]
fn the_grace_period_outlasts_the_configured_shutdown_timeout() {
    check_grace_period(DIR, &configmap_config());
}

#[test]
fn the_pod_gets_aws_credentials_through_irsa_in_the_stores_region() {
    check_irsa(DIR, &configmap_config());
}
