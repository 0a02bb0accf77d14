//! deploy/kubernetes/ against the config it ships: probes on the port the
//! ConfigMap listens on, state and audit log on the persistent volume, one
//! replica, a grace period above the shutdown timeout, IRSA, non-root.

use std::path::Path;

use rekey::config::StoreKind;
use serde_json::Value;

use super::{configmap_config, repo, yaml};

const DIR: &str = "deploy/kubernetes";

fn manifest(name: &str) -> Value {
    yaml(&format!("{DIR}/{name}"))
}

fn pod_spec() -> Value {
    let deployment = manifest("deployment.yaml");
    assert_eq!(deployment["kind"], "Deployment");
    deployment["spec"]["template"]["spec"].clone()
}

fn container() -> Value {
    let containers = pod_spec()["containers"].clone();
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

#[test]
fn every_manifest_parses_and_the_kustomization_lists_them_all() {
    let kustomization = manifest("kustomization.yaml");
    let listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(repo(DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml")
        .collect();
    files.sort();
    for file in &files {
        let doc = manifest(file);
        assert!(
            doc["apiVersion"].is_string() && doc["kind"].is_string(),
            "{file}"
        );
        assert!(
            listed.contains(&file.as_str()),
            "kustomization lists {file}"
        );
    }
    assert_eq!(listed.len(), files.len(), "{listed:?} vs {files:?}");
}

#[test]
fn the_probes_hit_healthz_and_readyz_on_the_port_the_config_listens_on() {
    let config = configmap_config();
    let listen = config.daemon.admin_listen;
    assert!(
        listen.ip().is_unspecified(),
        "admin_listen {listen}: the kubelet probes from outside the pod"
    );
    let container = container();
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            probe_port(&container, probe),
            u64::from(listen.port()),
            "{probe}"
        );
    }
    let service = manifest("service.yaml");
    let annotations = &service["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], listen.port().to_string());
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
}

#[test]
fn the_pod_runs_non_root_read_only_without_capabilities() {
    let pod = pod_spec()["securityContext"].clone();
    assert_eq!(pod["runAsNonRoot"], true);
    assert!(pod["runAsUser"].as_u64().is_some_and(|u| u != 0));
    let c = container()["securityContext"].clone();
    assert_eq!(c["runAsNonRoot"], true);
    assert_eq!(c["readOnlyRootFilesystem"], true);
    assert_eq!(c["allowPrivilegeEscalation"], false);
    assert_eq!(c["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(c["capabilities"].get("add").is_none());
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
    let grace = pod_spec()["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    let shutdown = configmap_config().daemon.shutdown_timeout;
    assert!(
        grace > shutdown.as_secs(),
        "terminationGracePeriodSeconds {grace} vs shutdown_timeout {shutdown:?}"
    );
}

#[test]
fn the_pod_gets_aws_credentials_through_irsa_in_the_stores_region() {
    let account = manifest("serviceaccount.yaml");
    let role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        .as_str()
        .expect("the IRSA annotation");
    assert!(
        role.starts_with("arn:aws:iam::") && role.contains(":role/"),
        "{role}"
    );
    assert_eq!(
        pod_spec()["serviceAccountName"],
        account["metadata"]["name"]
    );

    // aws-sm: credential references use the SDK's region from the environment.
    let env = container()["env"].clone();
    let region = env
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "AWS_REGION")
        .and_then(|e| e["value"].as_str().map(str::to_string))
        .expect("AWS_REGION");
    for store in configmap_config().stores.values() {
        if let StoreKind::AwsSecretsManager { region: r, .. } = &store.kind {
            assert_eq!(r, &region, "store {} region", store.name);
        }
    }
}
